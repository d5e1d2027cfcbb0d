// Every page: "/" moves the focus to the header's search box (unless typing already).
(function () {
  "use strict";
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    const box = document.getElementById("site-search");
    if (!box) return;
    event.preventDefault();
    box.focus();
  });
})();
