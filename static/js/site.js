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

// A slug input with data-slug-from="name" follows its form's name field (lower case,
// hyphens) until the person edits the slug themselves. A name with no Latin letter or
// digit ("עץ הערך", "顧客") gets data-slug-prefix and a short hash of the name, where
// it got an empty, required field.
(function () {
  "use strict";
  const hash = (text) => {
    let h = 0x811c9dc5; // FNV-1a, 32 bits
    for (const ch of text) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
    return h.toString(16).padStart(8, "0");
  };
  const slugify = (text, prefix) => {
    const ascii = text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 50);
    return ascii || (text.trim() ? `${prefix || "item"}-${hash(text.trim())}` : "");
  };
  function bind(slug) {
    if (slug.dataset.slugBound) return;
    slug.dataset.slugBound = "1";
    const source = slug.form && slug.form.querySelector(`[name$="${slug.dataset.slugFrom}"]`);
    if (!source) return;
    let touched = slug.value !== "";
    slug.addEventListener("input", () => {
      touched = slug.value !== "";
    });
    source.addEventListener("input", () => {
      if (!touched) slug.value = slugify(source.value, slug.dataset.slugPrefix);
    });
  }
  const scan = () => document.querySelectorAll("input[data-slug-from]").forEach(bind);
  document.addEventListener("DOMContentLoaded", scan);
  document.addEventListener("htmx:afterSettle", scan);
  scan();
})();

// Forms that lose data ask first: <form data-confirm="Remove …?">. Without JavaScript
// they submit directly (the pages that delete a whole node or source have their own
// confirmation page).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
