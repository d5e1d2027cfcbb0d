// Tree page behaviour: the form dialog, focus after swaps, drag-and-drop moves.
// Everything here is an enhancement: without JavaScript every action is a link.
(function () {
  "use strict";
  const dialog = () => document.getElementById("dialog");

  // A form loaded into the dialog opens it and takes the focus.
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "dialog-body") {
      const d = dialog();
      if (d && !d.open) d.showModal();
      const first = d && d.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    }
  });

  // The server says a change is done: close the dialog, focus what changed.
  document.body.addEventListener("vt:close-dialog", (event) => {
    const d = dialog();
    if (d && d.open) d.close();
    const selector = event.detail && event.detail.focus;
    // Focus after the out-of-band swaps of the same response have settled.
    setTimeout(() => {
      const target = selector && document.querySelector(selector);
      if (target) target.focus();
    }, 0);
  });

  function makeSortable(root) {
    if (!window.Sortable) return;
    root.querySelectorAll("ul.children").forEach((list) => {
      if (list.dataset.sortable) return;
      list.dataset.sortable = "1";
      window.Sortable.create(list, {
        group: "nodes", // one group: a drop that breaks the kind rules reaches the server, which refuses it
        handle: ".node__handle",
        draggable: "li.node",
        animation: 120,
        // Nested lists, as in SortableJS's own nested example: without these a drop
        // over a parent card rarely reaches the parent's list.
        fallbackOnBody: true,
        swapThreshold: 0.65,
        onEnd(event) {
          const item = event.item;
          const to = event.to;
          if (event.from === to && event.oldIndex === event.newIndex) return;
          window.htmx.ajax("POST", `/nodes/${item.dataset.nodeId}/move/`, {
            target: "#outline",
            swap: "none", // the response re-draws the outline out of band
            values: { parent: to.dataset.parentId || "", position: event.newIndex, via: "drag" },
          });
        },
      });
    });
  }

  const outline = () => document.getElementById("outline");
  document.addEventListener("DOMContentLoaded", () => outline() && makeSortable(outline()));
  document.body.addEventListener("htmx:afterSettle", () => outline() && makeSortable(outline()));
})();
