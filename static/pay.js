/* New-study form: asks the server (hype.effort, the one place for these figures) for the session
   time and hourly pay whenever a setting changes, and shows them under the pay fields. */
"use strict";

(function () {
  const box = document.getElementById("pay-estimate");
  const form = box && box.closest("form");
  if (!form) return;
  let timer = null;

  function render(data) {
    box.replaceChildren();
    const figures = document.createElement("p");
    figures.id = "pay-figures";
    if (data.error) {
      figures.className = "muted";
      figures.textContent = "Fix the settings above to see the time and hourly pay.";
      box.appendChild(figures);
      return;
    }
    figures.textContent = `About ${data.minutes} min (estimated from the trial counts): base $${data.base_hourly_usd.toFixed(2)}/hour, ` +
      `about $${data.floor_hourly_usd.toFixed(2)}/hour with half the answers right.`;
    box.appendChild(figures);
    if (data.warning) {
      const warning = document.createElement("p");
      warning.className = "error";
      warning.id = "pay-warning";
      warning.textContent = data.warning;
      box.appendChild(warning);
    }
  }

  async function update() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (name !== "csrf_token" && typeof value === "string") params.append(name, value);
    }
    if (box.dataset.study) params.append("study", box.dataset.study);
    try {
      const response = await fetch(`${box.dataset.url}?${params}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      render(await response.json());
    } catch (e) { /* keep the last figures */ }
  }

  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(update, 50); });
})();
