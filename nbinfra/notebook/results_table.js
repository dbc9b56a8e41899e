// The front end of nbinfra's results table (an anywidget ES module).
//
// One <table>: the first header row's cells are the sort controls (click: ascending, again:
// descending, a third time: unsorted; the arrow shows which), the second header row holds a
// filter box per column. The kernel sorts, filters and pages in DuckDB and sends only the
// page (`cells`); this side draws it, sends sort/filter/page/rows-per-page back as traits,
// copies the page to the clipboard as TSV and saves downloads the kernel sends as bytes.

const ARROWS = { asc: "\u25b2", desc: "\u25bc" }; // ▲ ▼
export const MAX_HTML = 120; // characters of a cell shown; the whole value is in its title

export function shorten(value, width) {
  if (value.includes("\n") || value.includes("\t")) value = value.split(/\s+/).filter(Boolean).join(" ");
  if (value.length <= width) return value;
  let cut = value.slice(0, width - 1);
  const space = cut.lastIndexOf(" ");
  if (space >= Math.floor(width / 2)) cut = cut.slice(0, space);
  return cut.replace(/[ ,;:]+$/, "") + "\u2026";
}

export const shortened = (value) => shorten(value, MAX_HTML);

export function tsv(columns, cells) {
  const clean = (v) => (v === null ? "NULL" : v.replace(/[\t\r\n]/g, " "));
  return [columns.map(clean), ...cells.map((row) => row.map(clean))]
    .map((row) => row.join("\t"))
    .join("\n");
}

function size(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) {
    bytes /= 1024;
    i += 1;
  }
  return `${i ? bytes.toFixed(1) : bytes} ${units[i]}`;
}

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // plain http on another host: no Clipboard API, the older copy command still works
  const area = make("textarea");
  area.value = text;
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("the browser refused to copy");
}

function render({ model, el }) {
  const columns = model.get("columns");
  const root = make("div", "nbinfra-tbl jp-RenderedHTMLCommon nbinfra-results");

  // paging: ◀ page [n] of N ▶ · rows per page
  const bar = make("div", "nbinfra-bar");
  const prev = make("button", "nbinfra-btn nbinfra-prev", "\u25c0");
  prev.title = "previous page";
  const pageBox = make("input", "nbinfra-page");
  pageBox.type = "number";
  pageBox.min = "1";
  pageBox.setAttribute("aria-label", "page");
  const of = make("span", "nbinfra-of");
  const next = make("button", "nbinfra-btn nbinfra-next", "\u25b6");
  next.title = "next page";
  const perPage = make("select", "nbinfra-per-page");
  perPage.setAttribute("aria-label", "rows per page");
  const perLabel = make("label", "nbinfra-label", "rows per page ");
  perLabel.appendChild(perPage);
  const pageLabel = make("label", "nbinfra-label", "page ");
  pageLabel.appendChild(pageBox);
  bar.append(prev, pageLabel, of, next, perLabel);

  const message = make("div", "nbinfra-message");

  // the table: sort headers, a filter row, the page
  const scroll = make("div", "nbinfra-scroll");
  const table = make("table");
  const thead = make("thead");
  const heads = make("tr", "nbinfra-heads");
  const filterRow = make("tr", "nbinfra-filters");
  const tbody = make("tbody");
  const headCells = [];
  const filterCells = [];
  const timers = {};

  const sendFilter = (name, value) => {
    clearTimeout(timers[name]);
    const filters = { ...model.get("filters") };
    if (value.trim()) filters[name] = value;
    else delete filters[name];
    if (JSON.stringify(filters) === JSON.stringify(model.get("filters"))) return;
    model.set("filters", filters);
    model.save_changes();
  };

  columns.forEach((name) => {
    const th = make("th", "nbinfra-sort");
    th.tabIndex = 0;
    th.dataset.column = name;
    th.title = `sort by ${name}`;
    th.append(make("span", "nbinfra-name", name), make("span", "nbinfra-arrow"));
    const cycle = () => {
      const [column, order] = model.get("sort");
      const sort = column !== name ? [name, "asc"] : order === "asc" ? [name, "desc"] : [];
      model.set("sort", sort);
      model.save_changes();
    };
    th.addEventListener("click", cycle);
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        cycle();
      }
    });
    heads.appendChild(th);
    headCells.push(th);

    const cell = make("th", "nbinfra-filter");
    const box = make("input");
    box.type = "search";
    box.placeholder = "filter";
    box.dataset.column = name;
    box.setAttribute("aria-label", `filter ${name}`);
    box.value = model.get("filters")[name] || "";
    box.addEventListener("input", () => {
      clearTimeout(timers[name]);
      timers[name] = setTimeout(() => sendFilter(name, box.value), 400);
    });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter") sendFilter(name, box.value);
    });
    box.addEventListener("change", () => sendFilter(name, box.value));
    cell.appendChild(box);
    filterRow.appendChild(cell);
    filterCells.push(cell);
  });
  thead.append(heads, filterRow);
  table.append(thead, tbody);
  scroll.appendChild(table);

  const info = make("div", "nbinfra-foot nbinfra-info");

  // copy and downloads
  const actions = make("div", "nbinfra-actions");
  const csv = make("button", "nbinfra-btn nbinfra-csv", "Download CSV");
  const parquet = make("button", "nbinfra-btn nbinfra-parquet", "Download Parquet");
  const copy = make("button", "nbinfra-btn nbinfra-copy", "Copy page");
  const status = make("span", "nbinfra-status");
  const link = make("a", "nbinfra-download");
  link.hidden = true;
  actions.append(csv, parquet, copy, status, link);

  root.append(bar, message, scroll, info, actions);
  el.appendChild(root);

  const drawHead = () => {
    const [column, order] = model.get("sort");
    const numeric = model.get("numeric");
    headCells.forEach((th, i) => {
      const sorted = th.dataset.column === column;
      th.querySelector(".nbinfra-arrow").textContent = sorted ? ` ${ARROWS[order]}` : "";
      th.setAttribute("aria-sort", sorted ? (order === "asc" ? "ascending" : "descending") : "none");
      th.classList.toggle("nbinfra-num", Boolean(numeric[i]));
      filterCells[i].classList.toggle("nbinfra-num", Boolean(numeric[i]));
    });
    // the filter row sticks below the sort row
    const top = `${heads.getBoundingClientRect().height || 0}px`;
    filterCells.forEach((th) => {
      th.style.top = top;
    });
  };

  const drawBody = () => {
    const numeric = model.get("numeric");
    const rows = model.get("cells").map((row) => {
      const tr = make("tr");
      row.forEach((value, i) => {
        const td = make("td");
        if (value === null) {
          td.appendChild(make("span", "nbinfra-null", "NULL"));
        } else {
          const shown = shortened(value);
          td.textContent = shown;
          if (shown !== value) td.title = value;
          if (numeric[i]) td.className = "nbinfra-num";
        }
        tr.appendChild(td);
      });
      return tr;
    });
    tbody.replaceChildren(...rows);
  };

  const drawPaging = () => {
    const page = model.get("page");
    const pages = model.get("pages");
    if (document.activeElement !== pageBox) pageBox.value = String(page);
    pageBox.max = String(pages);
    of.textContent = ` of ${pages.toLocaleString("en-US")} `;
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    const sizes = model.get("page_sizes");
    if (perPage.options.length !== sizes.length) {
      perPage.replaceChildren(...sizes.map((n) => make("option", "", String(n))));
    }
    perPage.value = String(model.get("page_size"));
    info.textContent = model.get("info");
    message.textContent = model.get("message");
    message.hidden = !model.get("message");
  };

  const goTo = (page) => {
    const pages = model.get("pages");
    const wanted = Math.min(pages, Math.max(1, page));
    if (wanted !== model.get("page")) {
      model.set("page", wanted);
      model.save_changes();
    } else {
      pageBox.value = String(wanted);
    }
  };
  prev.addEventListener("click", () => goTo(model.get("page") - 1));
  next.addEventListener("click", () => goTo(model.get("page") + 1));
  pageBox.addEventListener("change", () => goTo(Number.parseInt(pageBox.value, 10) || 1));
  perPage.addEventListener("change", () => {
    model.set("page_size", Number.parseInt(perPage.value, 10));
    model.save_changes();
  });

  copy.addEventListener("click", async () => {
    const cells = model.get("cells");
    try {
      await writeClipboard(tsv(model.get("columns"), cells));
      status.textContent = `copied ${cells.length} rows`;
    } catch (error) {
      status.textContent = `not copied: ${error.message || error}`;
    }
  });

  // downloads: the kernel writes the whole result and sends its bytes in parts
  let parts = [];
  let url = null;
  let asked = null; // this view's request: only the view that asked saves the file
  const ask = (format) => {
    status.textContent = `preparing ${format}\u2026`;
    parts = [];
    asked = `${format}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    model.send({ kind: "download", format, request: asked });
  };
  csv.addEventListener("click", () => ask("csv"));
  parquet.addEventListener("click", () => ask("parquet"));
  const onMessage = (msg, buffers) => {
    if (!msg || msg.request !== asked) return;
    if (msg.kind === "error") {
      status.textContent = msg.text;
      asked = null;
      return;
    }
    if (msg.kind !== "file") return;
    parts[msg.part] = buffers && buffers.length ? buffers[0] : new Uint8Array();
    if (parts.filter((p) => p !== undefined).length < msg.parts) return;
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob(parts, { type: msg.mime }));
    parts = [];
    link.href = url;
    link.download = msg.name;
    link.textContent = `${msg.name} (${size(msg.size)})`;
    link.title = `save ${msg.name} again`;
    link.hidden = false;
    status.textContent = "";
    asked = null;
    link.click();
  };
  model.on("msg:custom", onMessage);

  const onHead = () => {
    drawHead();
    drawBody();
  };
  model.on("change:sort", drawHead);
  model.on("change:numeric", onHead);
  model.on("change:cells", drawBody);
  for (const name of ["page", "pages", "page_size", "page_sizes", "info", "message"]) {
    model.on(`change:${name}`, drawPaging);
  }
  model.on("change:filters", () => {
    const filters = model.get("filters");
    filterRow.querySelectorAll("input").forEach((box) => {
      if (document.activeElement !== box) box.value = filters[box.dataset.column] || "";
    });
  });
  drawHead();
  drawBody();
  drawPaging();
  requestAnimationFrame(drawHead); // measured once laid out (the sticky offset)

  return () => {
    model.off("msg:custom", onMessage);
    if (url) URL.revokeObjectURL(url);
    Object.values(timers).forEach(clearTimeout);
  };
}

export default { render };
