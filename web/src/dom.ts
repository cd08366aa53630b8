// Small DOM helpers: elements are built with textContent, never from HTML
// strings, so text from documents or the model cannot inject markup.
type Attrs = Record<string, string | number | boolean | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === "class") el.className = String(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

let idCounter = 0;
export function uid(prefix: string): string {
  return `${prefix}-${++idCounter}`;
}

// A labelled form field: <label for=id>text</label> + control.
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  control.id ||= uid("f");
  const wrap = h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  if (hint) {
    const hintEl = h("p", { class: "hint", id: uid("hint") }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    wrap.append(hintEl);
  }
  return wrap;
}

// Announces `text` to screen readers through the polite live region.
export function announce(text: string) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => (region.textContent = text), 50);
}

// An error line (role=alert) shown in `box`; empty text clears it.
export function showError(box: HTMLElement, error: unknown) {
  box.textContent = error ? (error instanceof Error ? error.message : String(error)) : "";
  box.hidden = !error;
}

export function errorBox(): HTMLElement {
  const box = h("p", { class: "error", role: "alert" });
  box.hidden = true;
  return box;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
