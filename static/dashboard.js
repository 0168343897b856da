/* Study dashboard: refreshes the progress table and the live score every 10 s from live.json. */
"use strict";

(function () {
  const body = document.body;
  if (body.dataset.page !== "study") return;
  const url = body.dataset.live;
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  const fmt = (x, infinity) => (x === null || x === undefined ? "—" : infinity ? `${(100 * x).toFixed(1)}%` : x.toFixed(1));

  function renderProgress(rows, complete) {
    const tbody = document.querySelector("#progress tbody");
    tbody.replaceChildren(...rows.map((p) => {
      const tr = document.createElement("tr");
      if (p.full) tr.className = "complete";
      [p.model, `${p.valid} / ${p.target}`, p.in_progress, p.excluded, p.abandoned, p.failed, p.judgments, p.flagged,
        p.full ? "complete" : `${p.missing} to go`]
        .forEach((v) => tr.appendChild(cell(String(v))));
      return tr;
    }));
    document.getElementById("study-complete").hidden = !complete;
  }

  function renderScore(score) {
    const box = document.getElementById("live-score");
    if (!score.available) { const p = document.createElement("p"); p.className = "muted"; p.textContent = score.message; box.replaceChildren(p); return; }
    const infinity = score.settings.mode === "hype-infinity";
    const table = document.createElement("table");
    const head = document.createElement("tr");
    ["Model", infinity ? "HYPE-∞ error" : "HYPE-time (ms)", "95% CI", "Evaluators"].forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
    table.createTHead().appendChild(head);
    const tbody = table.createTBody();
    for (const row of score.leaderboard.rows) {
      const tr = document.createElement("tr");
      tr.appendChild(cell(row.model));
      tr.appendChild(cell(fmt(row.estimate, infinity)));
      if (row.ci_low === null || row.ci_low === undefined) {
        const td = cell(row.ci_note || "—"); td.className = "muted"; tr.appendChild(td);
      } else {
        tr.appendChild(cell(`${fmt(row.ci_low, infinity)} – ${fmt(row.ci_high, infinity)}`));
      }
      tr.appendChild(cell(String(row.n_evaluators)));
      tbody.appendChild(tr);
    }
    const rule = document.createElement("p");
    rule.className = "muted small"; rule.id = "ci-rule";
    rule.textContent = `A confidence interval is shown from ${score.min_evaluators_for_ci} evaluators of a model on: ` +
      "with fewer, resampling them gives an interval far narrower than the truth (with one, no width at all).";
    box.replaceChildren(table, rule);
  }

  async function refresh() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      renderProgress(data.progress, data.complete);
      renderScore(data.score);
      document.getElementById("live-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) { /* keep the last figures; try again next tick */ }
  }
  setInterval(refresh, 10000);
})();
