// The source dialog: a cited passage shown in its document's context (the
// chunks around it, or the whole document), fetched from /api/documents/{id}.
import { api, type Chunk } from "./api";
import { errorBox, h, showError } from "./dom";

const kContext = 3; // chunks shown before and after the cited one

interface PassageRef {
  documentId: number;
  chunkId?: number; // absent: the whole document from the start
  title: string;
  source?: string;
  text?: string; // shown when the document cannot be loaded
}

let opener: HTMLElement | null = null;

function dialog(): HTMLDialogElement {
  return document.getElementById("passage-dialog") as HTMLDialogElement;
}

export function initPassageDialog() {
  const d = dialog();
  d.querySelector("[data-close]")!.addEventListener("click", () => d.close());
  d.addEventListener("close", () => {
    opener?.focus();
    opener = null;
  });
  // A click on the backdrop (outside the dialog's box) closes it too.
  d.addEventListener("click", (e) => {
    if (e.target === d) d.close();
  });
}

export async function openPassage(ref: PassageRef, from: HTMLElement | null) {
  const d = dialog();
  const body = document.getElementById("passage-body")!;
  document.getElementById("passage-title")!.textContent = ref.title || ref.source || "Document";
  body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  opener = from;
  if (!d.open) d.showModal();
  try {
    const doc = await api.document(ref.documentId);
    renderChunks(body, doc, ref, false);
  } catch (e) {
    const box = errorBox();
    showError(box, e);
    body.replaceChildren(box);
    if (ref.text) body.append(h("blockquote", { class: "passage current" }, ref.text));
  }
}

function renderChunks(
  body: HTMLElement,
  doc: { title: string; source: string; collection: string; chunks: Chunk[] },
  ref: PassageRef,
  whole: boolean,
) {
  const at = ref.chunkId === undefined ? -1 : doc.chunks.findIndex((c) => c.id === ref.chunkId);
  const showAll = whole || at < 0;
  const first = showAll ? 0 : Math.max(0, at - kContext);
  const last = showAll ? doc.chunks.length : Math.min(doc.chunks.length, at + kContext + 1);
  const meta = h("p", { class: "muted" }, `${doc.source} · collection ${doc.collection} · ${doc.chunks.length} chunks`);
  const list = h("div", { class: "chunks" });
  let current: HTMLElement | null = null;
  for (let i = first; i < last; i++) {
    const chunk = doc.chunks[i];
    const isCurrent = i === at;
    const label = [chunk.section, chunk.page ? `page ${chunk.page}` : ""].filter(Boolean).join(" · ");
    const el = h(
      "section",
      {
        class: isCurrent ? "passage current" : "passage",
        "aria-label": isCurrent ? `Cited passage${label ? `: ${label}` : ""}` : label || `Chunk ${chunk.ordinal + 1}`,
        "aria-current": isCurrent ? "true" : undefined,
        tabindex: isCurrent ? -1 : undefined,
      },
      label ? h("p", { class: "section-label" }, label) : null,
      h("p", { class: "passage-text" }, chunk.text),
    );
    if (isCurrent) current = el;
    list.append(el);
  }
  body.replaceChildren(meta, list);
  if (!showAll && (first > 0 || last < doc.chunks.length)) {
    const more = h("button", { type: "button", class: "secondary" }, "Show the whole document");
    more.addEventListener("click", () => renderChunks(body, doc, ref, true));
    body.append(more);
  }
  const target = current ?? list;
  if (current) {
    current.scrollIntoView({ block: "center" });
    current.focus();
  } else {
    target.scrollTop = 0;
  }
}
