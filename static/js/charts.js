// Draws the Plotly figures the server built. Each [data-figure] element names the
// json_script element that holds its {data, layout, config}; the figure is built in
// Python (outcomes/views.py), so this only hands it to the vendored Plotly. Without
// JavaScript the page's tables carry the same values.
(function () {
  "use strict";
  function draw(root) {
    if (typeof window.Plotly === "undefined") return;
    (root || document).querySelectorAll("[data-figure]").forEach(function (element) {
      const source = document.getElementById(element.dataset.figure);
      if (!source) return;
      const figure = JSON.parse(source.textContent);
      element.textContent = "";
      window.Plotly.newPlot(element, figure.data, figure.layout, figure.config);
    });
  }
  // Pages that swap charts in with htmx (a review item redrawn) draw them again.
  window.vtDrawCharts = draw;
  document.addEventListener("htmx:afterSwap", function (event) {
    draw(event.target);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      draw();
    });
  } else {
    draw();
  }
})();
