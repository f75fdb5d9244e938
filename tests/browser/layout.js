// What tests/browser/test_layout.py reads from a page: texts or controls drawn over each other, and elements
// wider than their card or the screen. Called by Playwright's evaluate with the viewport's width.
width => {
  const label = box => `"${box.what.slice(0, 50)}" at ${Math.round(box.box.left)},${Math.round(box.box.top)}`;
  const name = element => element.tagName.toLowerCase() + (element.id ? `#${element.id}` : "")
    + (typeof element.className === "string" && element.className ? `.${element.className.split(" ").join(".")}` : "");
  // What is not drawn (hidden, clipped away for screen readers, in a closed <details>, an <option> of a closed
  // <select>) has no box to collide; toasts float above the page on purpose.
  const clipped = element => {
    for (let each = element; each; each = each.parentElement) if (getComputedStyle(each).clipPath !== "none") return true;
    return false;
  };
  const drawn = element => element.checkVisibility({visibilityProperty: true, opacityProperty: true})
    && !element.closest("option, title, noscript, .toasts") && !clipped(element);

  // What of a box its ancestors that hide their overflow let show (a long value cut with an ellipsis).
  const shown = (box, element) => {
    let [left, top, right, bottom] = [box.left, box.top, box.right, box.bottom];
    for (let each = element; each; each = each.parentElement) {
      const style = getComputedStyle(each);
      if (style.overflowX === "visible" && style.overflowY === "visible") continue;
      const edge = each.getBoundingClientRect();
      [left, top, right, bottom] = [Math.max(left, edge.left), Math.max(top, edge.top), Math.min(right, edge.right), Math.min(bottom, edge.bottom)];
    }
    return {left, top, right, bottom, width: right - left, height: bottom - top};
  };

  // Every line of text and every control, with the element it belongs to.
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    if (!text.textContent.trim() || !drawn(text.parentElement)) continue;
    const range = document.createRange();
    range.selectNodeContents(text);
    for (const line of range.getClientRects()) {
      const box = shown(line, text.parentElement);
      if (box.width > 1 && box.height > 1) boxes.push({element: text.parentElement, box, what: text.textContent.trim()});
    }
  }
  for (const control of document.querySelectorAll("input:not([type=hidden]), select, button, textarea, progress"))
    if (drawn(control)) boxes.push({element: control, box: control.getBoundingClientRect(), what: name(control)});

  const overlaps = [];
  const apart = (a, b) => a.right <= b.left + 1 || b.right <= a.left + 1 || a.bottom <= b.top + 1 || b.bottom <= a.top + 1;
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, b] = [boxes[i], boxes[j]];
      if (a.element.contains(b.element) || b.element.contains(a.element) || apart(a.box, b.box)) continue;
      overlaps.push(`${label(a)} over ${label(b)}`);
    }

  // Whatever a card holds lies within it, but for what a box that scrolls on purpose holds (a wide table).
  const spills = [];
  for (const card of document.querySelectorAll(".panel, .site-header")) {
    const edge = card.getBoundingClientRect();
    for (const element of card.querySelectorAll("*")) {
      if (element.closest(".table-wrap > *") || !drawn(element)) continue;
      const box = element.getBoundingClientRect();
      if (box.width > 1 && (box.left < edge.left - 1 || box.right > edge.right + 1))
        spills.push(`${name(element)} (${Math.round(box.left)} to ${Math.round(box.right)}) out of ${name(card)}`
          + ` (${Math.round(edge.left)} to ${Math.round(edge.right)})`);
    }
  }
  const wide = document.documentElement.scrollWidth;
  if (wide > width) spills.push(`the page is ${wide} px wide`);
  return [...overlaps, ...spills];
}
