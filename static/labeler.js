// Task-suite page: each option's key answers the focused task and moves on, Enter submits,
// unanswered tasks are shown in place, a countdown, click-to-expand images, and the
// practice-task check (hint after a wrong answer, then ask again). With several answers
// (checkboxes) an option's key ticks or unticks it on the focused task, "none of these"
// clears the others, the arrow keys move between tasks and Enter submits.
(function () {
  "use strict";
  let timer = null;

  const suite = () => document.getElementById("suite");
  const form = () => document.getElementById("suite-form");
  const tasks = () => Array.from(document.querySelectorAll("#suite .suite-task"));
  const answered = (task) =>
    !!task.querySelector("input[type=radio]:checked, input[type=checkbox]:checked");
  const multiple = () => !!(form() && form().hasAttribute("data-multiple"));
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  function currentTask() {
    const el = document.activeElement;
    return el && el.closest ? el.closest(".suite-task") : null;
  }

  function focusTask(task) {
    if (!task) return;
    task.focus({ preventScroll: true });
    task.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function moveOn(task) {
    const all = tasks();
    const next = all[all.indexOf(task) + 1];
    if (next) focusTask(next);
    else if (form()) form().querySelector("button[type=submit]").focus();
  }

  // The answers chosen so far go to the server as they are picked: a refresh, or the same
  // suite opened on another device, finds them again.
  let drafting = Promise.resolve();
  function saveDraft() {
    const f = form();
    if (!f || !f.dataset.draftUrl) return;
    const body = new URLSearchParams();
    if (multiple()) body.append("answer_type", "multiple");
    f.querySelectorAll("input[type=radio]:checked, input[type=checkbox]:checked").forEach(
      (r) => body.append(r.name, r.value)
    );
    drafting = drafting.then(() =>
      fetch(f.dataset.draftUrl, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf() },
        body,
        keepalive: true,
      }).catch(() => {})
    );
  }

  async function afterAnswer(task, radio) {
    task.classList.remove("missing");
    const feedback = task.querySelector(".task-feedback");
    feedback.textContent = "";
    const url = task.dataset.checkUrl;
    if (url) {
      const first = task.querySelector("input[data-first]");
      if (first && !first.value) first.value = radio.value;
      const response = await fetch(url, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf(), "HX-Request": "true" },
        body: new URLSearchParams({ value: radio.value }),
      });
      feedback.innerHTML = await response.text();
      if (response.headers.get("X-Check") === "wrong") {
        radio.checked = false;
        focusTask(task);
        return;
      }
    }
    saveDraft();
    moveOn(task);
  }

  // several answers: tick or untick one box; "none of these" and the options exclude each other
  function toggle(task, box, checked) {
    box.checked = checked;
    if (box.checked) {
      const others = box.hasAttribute("data-none")
        ? task.querySelectorAll("input[type=checkbox]:not([data-none])")
        : task.querySelectorAll("input[type=checkbox][data-none]");
      others.forEach((other) => (other.checked = false));
    }
    task.classList.remove("missing");
    task.querySelector(".task-feedback").textContent = "";
    saveDraft();
  }

  function markMissing() {
    const missing = tasks().filter((t) => !answered(t));
    const box = document.querySelector("#suite [data-missing]");
    missing.forEach((t) => {
      t.classList.add("missing");
      t.querySelector(".task-feedback").innerHTML =
        '<small class="error" role="alert">Choose an answer.</small>';
    });
    if (box) {
      box.hidden = missing.length === 0;
      box.textContent = missing.length
        ? "Answer every task first: " +
          missing.map((t) => t.getAttribute("aria-label").split(" of")[0]).join(", ") + "."
        : "";
    }
    if (missing.length) focusTask(missing[0]);
    return missing.length;
  }

  function startTimer() {
    clearInterval(timer);
    const root = suite();
    if (!root || !root.dataset.secondsLeft) return;
    const end = Date.now() + Number(root.dataset.secondsLeft) * 1000;
    const text = root.querySelector("[data-timer-text]");
    const tick = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      text.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      root.querySelector("[data-timer]").classList.toggle("low", left <= 60);
      if (left === 0) {
        clearInterval(timer);
        text.textContent = "time is up";
        const button = form() && form().querySelector("button[type=submit]");
        if (button) button.disabled = true;
      }
    };
    tick();
    timer = setInterval(tick, 1000);
  }

  function init() {
    startTimer();
    const first = document.querySelector("#suite .suite-task.missing") ||
      tasks().find((t) => !answered(t));
    if (first) focusTask(first);
  }

  function closeLightbox() {
    const box = document.querySelector(".lightbox");
    if (box) box.remove();
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") return closeLightbox();
    if (!form() || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.matches && event.target.matches("textarea, input[type=text], select")) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : "";
    if (multiple() && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      const all = tasks();
      const task = currentTask();
      const step = event.key === "ArrowDown" ? 1 : -1;
      const next = task ? all[all.indexOf(task) + step] : all[0];
      if (next) {
        event.preventDefault();
        focusTask(next);
      }
      return;
    }
    if (key && /^[0-9a-z]$/.test(key) && multiple()) {
      const task = currentTask() || tasks().find((t) => !answered(t));
      const box = task && task.querySelector(`input[type=checkbox][data-hotkey="${key}"]`);
      if (!box) return;
      event.preventDefault();
      toggle(task, box, !box.checked);
    } else if (key && /^[0-9a-z]$/.test(key)) {
      const task = currentTask() || tasks().find((t) => !answered(t));
      const radio = task && task.querySelector(`input[type=radio][data-hotkey="${key}"]`);
      if (!radio) return;
      event.preventDefault();
      radio.checked = true;
      afterAnswer(task, radio);
    } else if (event.key === "Enter" && !event.target.closest("a, [data-expand], .skip-form")) {
      event.preventDefault();
      if (!markMissing()) form().requestSubmit();
    }
  });

  document.addEventListener("change", (event) => {
    const box = event.target;
    if (box.matches && box.matches("#suite input[type=checkbox]")) {
      return toggle(box.closest(".suite-task"), box, box.checked);
    }
    const radio = event.target;
    if (radio.matches && radio.matches("#suite input[type=radio]")) {
      afterAnswer(radio.closest(".suite-task"), radio);
    }
  });

  document.addEventListener("click", (event) => {
    const expand = event.target.closest && event.target.closest("[data-expand]");
    if (expand) {
      const box = document.createElement("div");
      box.className = "lightbox";
      box.title = "Click or press Escape to close";
      const img = document.createElement("img");
      img.src = expand.querySelector("img").src;
      img.alt = "Full size";
      box.appendChild(img);
      box.addEventListener("click", closeLightbox);
      document.body.appendChild(box);
    }
  });

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt === form() && markMissing()) event.preventDefault();
  });
  document.addEventListener("htmx:afterSwap", init);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
