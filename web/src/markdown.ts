// Markdown from the model (or from documents) to safe DOM: marked renders,
// with raw HTML in the text shown as text rather than passed through; then
// DOMPurify removes anything active all the same (scripts, event handlers,
// javascript: URLs, styles, images that would fetch), then "[n]" citations
// become buttons. Only the sanitized fragment ever reaches the page.
import DOMPurify from "dompurify";
import { Marked } from "marked";
import { h } from "./dom";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const markdown = new Marked({
  gfm: true,
  async: false,
  renderer: { html: (token) => escapeHtml(token.text) },
});

const kPurify = {
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "iframe",
    "svg", "math", "video", "audio", "picture", "source", "object", "embed"],
  FORBID_ATTR: ["style", "id", "class", "name"],
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("rel", "noopener noreferrer");
    node.setAttribute("target", "_blank");
  }
});

export interface CitationTarget {
  n: number;
  title: string;
}

// Renders the markdown `text` into `target`. Every "[n]" outside code whose n is in
// `sources` becomes a button; `onCite(n, button)` runs when it is pressed.
export function renderMarkdown(
  target: HTMLElement,
  text: string,
  sources: CitationTarget[] = [],
  onCite?: (n: number, opener: HTMLElement) => void,
) {
  const html = markdown.parse(text) as string;
  const fragment = DOMPurify.sanitize(html, { ...kPurify, RETURN_DOM_FRAGMENT: true });
  if (sources.length && onCite) linkCitations(fragment, sources, onCite);
  target.replaceChildren(fragment);
}

function linkCitations(
  root: DocumentFragment,
  sources: CitationTarget[],
  onCite: (n: number, opener: HTMLElement) => void,
) {
  const byNumber = new Map(sources.map((s) => [s.n, s]));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const textNodes: Text[] = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!(node.parentElement?.closest("code, pre, a"))) textNodes.push(node as Text);
  }
  const pattern = /\[(\d{1,3})\]/g;
  for (const node of textNodes) {
    const text = node.data;
    if (!pattern.test(text)) continue;
    pattern.lastIndex = 0;
    const pieces: (string | Node)[] = [];
    let last = 0;
    for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
      const n = Number(m[1]);
      const source = byNumber.get(n);
      if (!source) continue;
      pieces.push(text.slice(last, m.index));
      const button = h(
        "button",
        { type: "button", class: "cite", "data-cite": n, "aria-label": `Source ${n}: ${source.title}` },
        `[${n}]`,
      );
      button.addEventListener("click", () => onCite(n, button));
      pieces.push(button);
      last = m.index + m[0].length;
    }
    pieces.push(text.slice(last));
    node.replaceWith(...pieces);
  }
}

// Search snippets come from the server as escaped text with <mark> around
// matches; only <mark> survives.
export function renderSnippet(target: HTMLElement, snippet: string) {
  target.replaceChildren(
    DOMPurify.sanitize(snippet, { ALLOWED_TAGS: ["mark"], ALLOWED_ATTR: [], RETURN_DOM_FRAGMENT: true }),
  );
}
