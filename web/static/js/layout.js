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

// The most positions (rows x cols) a table is drawn with, as engine/table_shape.py's MAX_CELLS:
// a stored table is data from outside, and a grid past this would hang the page.
export const MAX_CELLS = 1000000;

function span(value) {
  return Number.isInteger(value) && value > 1 ? value : 1;
}

/** The cells of a table inside its grid, by row, and the grid cut to where they reach (cells at
 * positions that are not whole numbers, or outside the table's rows and cols, are left out). */
export function tableGrid(table) {
  const declaredRows = Number.isInteger(table.rows) ? table.rows : 0;
  const declaredCols = Number.isInteger(table.cols) ? table.cols : 0;
  const byRow = new Map();
  let rows = 0;
  let cols = 0;
  for (const cell of table.cells || []) {
    const { row, col } = cell || {};
    if (!Number.isInteger(row) || !Number.isInteger(col)) continue;
    if (row < 0 || col < 0 || row >= declaredRows || col >= declaredCols) continue;
    rows = Math.max(rows, Math.min(row + span(cell.rowspan), declaredRows));
    cols = Math.max(cols, Math.min(col + span(cell.colspan), declaredCols));
    if (!byRow.has(row)) byRow.set(row, []);
    byRow.get(row).push(cell);
  }
  return { rows, cols, byRow };
}

/** A table as an HTML table: a row per grid row, merged cells spanning; ``tooLarge`` (a label)
 * in its place when the grid is over MAX_CELLS positions. */
export function tableElement(item, table, tooLarge = "This table is too large to show.") {
  const node = el("table", { class: "ocr-table", "data-testid": "viewer-table" });
  const { rows, cols, byRow } = tableGrid(table);
  if (rows * cols > MAX_CELLS) {
    node.append(el("caption", { "data-testid": "viewer-table-too-large" }, tooLarge));
    return node;
  }
  const body = el("tbody");
  for (let row = 0; row < rows; row += 1) {
    const tr = el("tr");
    (byRow.get(row) || [])
      .sort((a, b) => a.col - b.col)
      .forEach((cell) => {
        const attrs = { "data-testid": "viewer-cell", "data-row": cell.row, "data-col": cell.col };
        if (span(cell.rowspan) > 1) attrs.rowspan = Math.min(cell.rowspan, rows - row);
        if (span(cell.colspan) > 1) attrs.colspan = Math.min(cell.colspan, cols - cell.col);
        tr.append(el("td", attrs, cellText(item, cell)));
      });
    body.append(tr);
  }
  node.append(body);
  return node;
}
