"use strict";
(function () {
  const token = new URLSearchParams(window.location.search).get("token") || "";
  const task = document.getElementById("task");
  const done = document.getElementById("done");
  const grid = document.getElementById("grid");
  const queryImg = document.querySelector("img[data-query]");
  const progress = document.querySelector("[data-progress]");
  const message = document.getElementById("message");
  let current = null;
  let busy = false;

  function showProgress(answered, total) {
    progress.textContent = answered + " / " + total;
  }

  function render(data) {
    showProgress(data.answered, data.total);
    if (data.done) {
      current = null;
      grid.replaceChildren();
      task.hidden = true;
      done.hidden = false;
      return;
    }
    current = data.query_id;
    queryImg.src = data.query_url;
    grid.replaceChildren();
    data.candidates.forEach(function (cand, i) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.candidate = cand.id;
      button.setAttribute("aria-label", "candidate " + (i + 1));
      const img = document.createElement("img");
      img.src = cand.url;
      img.alt = "";
      button.appendChild(img);
      button.addEventListener("click", function () { pick(cand.id, button); });
      grid.appendChild(button);
    });
    task.hidden = false;
    done.hidden = true;
    if (document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
  }

  async function load() {
    const response = await fetch("/api/next?token=" + encodeURIComponent(token), { cache: "no-store" });
    if (!response.ok) {
      message.textContent = response.status === 401 || response.status === 403
        ? "This link is not valid." : "The server could not be reached; reload the page.";
      return;
    }
    message.textContent = "";
    render(await response.json());
  }

  async function pick(candidateId, button) {
    if (busy || current === null) { return; }
    busy = true;
    button.classList.add("picked");
    try {
      const response = await fetch("/api/answer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: token, query_id: current, candidate_id: candidateId }),
      });
      if (response.ok || response.status === 409) {
        await load();
      } else {
        button.classList.remove("picked");
        message.textContent = "Your answer was not saved; please try again.";
      }
    } catch (err) {
      button.classList.remove("picked");
      message.textContent = "The server could not be reached; please try again.";
    } finally {
      busy = false;
    }
  }

  function columns() {
    const buttons = grid.querySelectorAll("button");
    if (buttons.length === 0) { return 1; }
    const top = buttons[0].offsetTop;
    let n = 0;
    while (n < buttons.length && buttons[n].offsetTop === top) { n += 1; }
    return Math.max(1, n);
  }

  // arrow keys: the first press puts the focus on the first candidate (no candidate
  // is highlighted before), later ones move it; Enter (or Space) picks the focused one
  document.addEventListener("keydown", function (event) {
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() }[event.key];
    if (step === undefined || task.hidden) { return; }
    const buttons = Array.from(grid.querySelectorAll("button"));
    if (buttons.length === 0) { return; }
    event.preventDefault();
    const i = buttons.indexOf(document.activeElement);
    const j = i < 0 ? 0 : Math.min(buttons.length - 1, Math.max(0, i + step));
    buttons[j].focus();
  });

  load();
}());
