// Charts of the overview, from the JSON the page carries (no inline script: the CSP
// allows only scripts of this site). Amounts arrive as decimal strings; Chart.js only
// draws them, the figures shown as text come from the server.
(function () {
  "use strict";
  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  var palette = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777",
                 "#65a30d", "#ea580c", "#4b5563", "#0d9488", "#9333ea", "#ca8a04", "#be123c", "#1d4ed8"];
  function colour(i) { return palette[i % palette.length]; }
  function draw() {
    var charts = data("chart-data");
    var labels = data("chart-labels");
    if (!charts || typeof Chart === "undefined") return;
    Chart.defaults.animation = false;

    var raisedDays = [], reasons = [];
    charts.raised.forEach(function (r) {
      if (raisedDays.indexOf(r.day) < 0) raisedDays.push(r.day);
      if (reasons.indexOf(r.reason) < 0) reasons.push(r.reason);
    });
    new Chart(document.getElementById("chart-raised"), {
      type: "bar",
      data: { labels: raisedDays, datasets: reasons.map(function (reason, i) {
        return { label: reason, backgroundColor: colour(i), data: raisedDays.map(function (d) {
          var hit = charts.raised.find(function (r) { return r.day === d && r.reason === reason; });
          return hit ? hit.n : 0; }) };
      }) },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }
    });

    var currencies = [], days = [];
    charts.dso.forEach(function (r) {
      if (currencies.indexOf(r.currency) < 0) currencies.push(r.currency);
      if (days.indexOf(r.day) < 0) days.push(r.day);
    });
    days.sort();
    var dsoSets = [];
    currencies.forEach(function (c, i) {
      var rows = charts.dso.filter(function (r) { return r.currency === c; });
      function series(field) { return days.map(function (d) {
        var hit = rows.find(function (r) { return r.day === d; });
        return hit && hit[field] !== null ? Number(hit[field]) : null; }); }
      dsoSets.push({ label: c, data: series("dso_days"), borderColor: colour(i), spanGaps: true });
      if (i === 0) {
        dsoSets.push({ label: labels.target, data: series("target_days"), borderColor: "#059669", borderDash: [6, 4], pointRadius: 0 });
        dsoSets.push({ label: labels.alert, data: series("alert_days"), borderColor: "#dc2626", borderDash: [2, 3], pointRadius: 0 });
      }
    });
    new Chart(document.getElementById("chart-dso"), { type: "line", data: { labels: days, datasets: dsoSets },
      options: { scales: { y: { beginAtZero: true } } } });

    var headers = charts.ageing.headers, rows = charts.ageing.rows;
    var buckets = headers.slice(2, headers.length - 1);
    new Chart(document.getElementById("chart-ageing"), {
      type: "bar",
      data: { labels: rows.map(function (r) { return (r[0] || "?") + " " + r[1]; }),
              datasets: buckets.map(function (b, i) {
                return { label: b === "not_due" ? labels.not_due : b, backgroundColor: colour(i),
                         data: rows.map(function (r) { return Number(r[i + 2]); }) }; }) },
      options: { indexAxis: "y", scales: { x: { stacked: true }, y: { stacked: true } } }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
