// Tree page behaviour: the form dialog, focus after swaps, drag-and-drop moves.
// Everything here is an enhancement: without JavaScript every action is a link.
(function () {
  "use strict";
  const dialog = () => document.getElementById("dialog");

  // A form loaded into the dialog opens it and takes the focus.
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "dialog-body" && event.detail.target.innerHTML.trim()) {
      const d = dialog();
      if (d && !d.open) d.showModal();
      const first = d && d.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    }
  });

  // The server says a change is done: close the dialog, focus what changed. The
  // element may arrive with a swap that has not settled yet, so the focus waits
  // until it exists.
  let pendingFocus = null;
  function applyFocus() {
    const target = pendingFocus && document.querySelector(pendingFocus);
    if (target) {
      target.focus();
      pendingFocus = null;
    }
  }
  document.body.addEventListener("vt:close-dialog", (event) => {
    const d = dialog();
    if (d && d.open) d.close();
    pendingFocus = (event.detail && event.detail.focus) || null;
    setTimeout(applyFocus, 0);
  });
  document.body.addEventListener("htmx:afterSettle", () => setTimeout(applyFocus, 0));

  // Where the pointer last was during a drag: a drop's own coordinates are not
  // reliable in every browser.
  let lastPointer = null;
  document.addEventListener(
    "dragover",
    (event) => {
      lastPointer = [event.clientX, event.clientY];
    },
    true, // capture: SortableJS stops the event's propagation
  );

  const article = (word) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

  // Dropped over a list of another kind: nothing moved; say why, with the server's
  // kind rules (data-parent-kinds on the outline).
  function explainRefusal(item) {
    const under = lastPointer && document.elementFromPoint(...lastPointer);
    const list = under && under.closest("ul.children");
    const kind = item.dataset.kind;
    if (!list || list.dataset.childKind === kind) return;
    const parent = JSON.parse(outline().dataset.parentKinds)[kind];
    const text = `Move refused: ${article(kind)} must sit under ${parent ? article(parent) : "the vision"}.`;
    const p = document.createElement("p");
    p.className = "message message--error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    document.getElementById("messages").replaceChildren(p);
  }

  function makeSortable(root) {
    if (!window.Sortable) return;
    root.querySelectorAll("ul.children").forEach((list) => {
      if (list.dataset.sortable) return;
      list.dataset.sortable = "1";
      window.Sortable.create(list, {
        // A list takes only items of the kind it holds, so passing over a list of
        // another kind (a goal's bets, on the way to another bet's initiatives)
        // changes nothing. The server still enforces the rules for every move.
        group: {
          name: "nodes",
          put: (to, from, dragged) => to.el.dataset.childKind === dragged.dataset.kind,
        },
        handle: ".node__handle",
        draggable: "li.node",
        // No sliding animation for people who ask for reduced motion.
        animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? 0 : 120,
        emptyInsertThreshold: 24, // an empty list (a goal with no bets yet) is easy to hit
        // Nested lists, as in SortableJS's own nested example: without these a drop
        // over a parent card rarely reaches the parent's list.
        fallbackOnBody: true,
        swapThreshold: 0.65,
        onEnd(event) {
          const item = event.item;
          const to = event.to;
          if (event.from === to && event.oldIndex === event.newIndex) {
            explainRefusal(item);
            return;
          }
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
