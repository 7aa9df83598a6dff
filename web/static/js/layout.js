// A result's layout in the viewer: its blocks (paragraphs, lists, headings, table regions) in
// reading order, and its tables drawn as HTML tables. Texts come from the result's lines as they
// read now, so an edit shows everywhere; all text goes in through textContent (dom.js).

import { el } from "./dom.js";

/** The blocks of one page (a document's ``page``; all of an image's), each with its number. */
export function blocksOn(item, page, pageCount) {
  return (item.blocks || [])
    .map((block, number) => ({ block, number }))
    .filter(({ block }) => pageCount === 1 || (block.page || 1) === page);
}

/** The tables of one page, each with its 1-based number in the result (the CSV's). */
export function tablesOn(item, page, pageCount) {
  return (item.tables || [])
    .map((table, index) => ({ table, number: index + 1 }))
    .filter(({ table }) => pageCount === 1 || (table.page || 1) === page);
}

function lineText(item, index) {
  const line = (item.lines || [])[index];
  return line ? String(line.text) : "";
}

/** A block's text: a row's lines joined by a space, rows on lines of their own. */
export function blockText(item, block) {
  const rows = block.rows && block.rows.length ? block.rows : (block.lines || []).map((i) => [i]);
  return rows.map((row) => row.map((i) => lineText(item, i)).join(" ")).join("\n");
}

/** A cell's text from its lines (its own ``text`` when it names none). */
export function cellText(item, cell) {
  const lines = cell.lines || [];
  return lines.length ? lines.map((i) => lineText(item, i)).join(" ") : String(cell.text || "");
}

/** A table as an HTML table: a row per grid row, merged cells spanning. */
export function tableElement(item, table) {
  const node = el("table", { class: "ocr-table", "data-testid": "viewer-table" });
  const body = el("tbody");
  for (let row = 0; row < (table.rows || 0); row += 1) {
    const tr = el("tr");
    (table.cells || [])
      .filter((cell) => cell.row === row)
      .sort((a, b) => a.col - b.col)
      .forEach((cell) => {
        const attrs = { "data-testid": "viewer-cell", "data-row": cell.row, "data-col": cell.col };
        if ((cell.rowspan || 1) > 1) attrs.rowspan = cell.rowspan;
        if ((cell.colspan || 1) > 1) attrs.colspan = cell.colspan;
        tr.append(el("td", attrs, cellText(item, cell)));
      });
    body.append(tr);
  }
  node.append(body);
  return node;
}
