// The diagram view's tools: fold/unfold a branch, show/hide measures, zoom to fit, and
// the download links follow the measures toggle. Without JavaScript the diagram is
// drawn whole and the download links still work.
(function () {
  "use strict";
  const diagram = document.getElementById("diagram");
  if (!diagram) return;
  const canvas = diagram.querySelector(".diagram__canvas");

  function setFolded(button, folded) {
    const kids = document.getElementById(button.getAttribute("aria-controls"));
    if (!kids) return;
    kids.hidden = folded;
    button.setAttribute("aria-expanded", String(!folded));
    button.textContent = folded ? "+" : "−";
    button.setAttribute("aria-label", button.getAttribute("aria-label").replace(/^(Fold|Unfold)/, folded ? "Unfold" : "Fold"));
  }
  diagram.addEventListener("click", (event) => {
    const button = event.target.closest(".box__toggle");
    if (!button) return;
    setFolded(button, button.getAttribute("aria-expanded") === "true");
  });

  const links = document.querySelectorAll("[data-export]");
  const measures = document.getElementById("show-measures");
  measures.addEventListener("change", () => {
    diagram.classList.toggle("diagram--no-measures", !measures.checked);
    links.forEach((link) => {
      const url = new URL(link.href, window.location.href);
      if (measures.checked) url.searchParams.delete("measures");
      else url.searchParams.set("measures", "0");
      link.href = url.pathname + url.search;
    });
  });

  let zoomed = false;
  const fit = document.getElementById("diagram-fit");
  fit.hidden = false;
  fit.addEventListener("click", () => {
    zoomed = !zoomed;
    if (zoomed) {
      const scale = Math.min(1, diagram.clientWidth / canvas.scrollWidth);
      canvas.style.transform = `scale(${scale})`;
      diagram.style.height = `${canvas.scrollHeight * scale + 16}px`;
      fit.textContent = "Actual size";
    } else {
      canvas.style.transform = "";
      diagram.style.height = "";
      fit.textContent = "Zoom to fit";
    }
  });
  const toggles = () => diagram.querySelectorAll(".box__toggle");
  const fold = document.getElementById("diagram-fold");
  const unfold = document.getElementById("diagram-unfold");
  fold.hidden = unfold.hidden = false;
  // Folding all leaves the vision and its goals (the vision has no fold button).
  fold.addEventListener("click", () => toggles().forEach((b) => setFolded(b, true)));
  unfold.addEventListener("click", () => toggles().forEach((b) => setFolded(b, false)));
})();
