// Search: the retrieval behind the answers, with a mode switch (lexical
// BM25, dense embeddings, or hybrid fusion) and highlighted snippets.
import { api } from "../api";
import { errorBox, field, h, showError } from "../dom";
import { renderSnippet } from "../markdown";
import { openPassage } from "../passage";
import { settings } from "../settings";
import type { View } from "../main";

const kModes: [string, string][] = [
  ["", "Default"],
  ["lexical", "Lexical"],
  ["dense", "Dense"],
  ["hybrid", "Hybrid"],
];

export function searchView(): View {
  const heading = h("h1", { tabindex: -1 }, "Search");
  const q = h("input", { type: "search", required: true, autocomplete: "off" });
  const collection = h("select", {}, h("option", { value: "" }, "All collections"));
  const k = h("input", { type: "number", min: 1, max: 50, value: 10 });
  const preferred = settings().mode;
  const modes = h("fieldset", { class: "modes" }, h("legend", {}, "Mode"),
    ...kModes.map(([value, label]) => h("label", {},
      h("input", { type: "radio", name: "mode", value, checked: value === preferred }), ` ${label}`)));
  const error = errorBox();
  const status = h("p", { class: "muted", role: "status" });
  const results = h("ol", { class: "results", "aria-label": "Results" });
  const form = h("form", { class: "card search-form", role: "search" },
    field("Query", q),
    h("div", { class: "row" }, modes, field("Collection", collection), field("Results", k)),
    h("button", { type: "submit" }, "Search"),
    error);

  api.collections().then((list) => {
    for (const c of list) collection.append(h("option", { value: c.name }, c.name));
  }).catch(() => {});

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError(error, null);
    const params: Record<string, string> = { q: q.value, k: k.value || "10" };
    const mode = (form.querySelector("input[name=mode]:checked") as HTMLInputElement | null)?.value;
    if (mode) params.mode = mode;
    if (collection.value) params.collection = collection.value;
    status.textContent = "Searching…";
    try {
      const hits = await api.search(params);
      status.textContent = `${hits.length} result${hits.length === 1 ? "" : "s"}`;
      results.replaceChildren(...hits.map((hit) => {
        const title = hit.title || hit.source;
        const open = h("button", { type: "button", class: "link" }, title);
        open.addEventListener("click", () =>
          void openPassage({ documentId: hit.document_id, chunkId: hit.chunk_id, title, source: hit.source, text: hit.text }, open));
        const snippet = h("p", { class: "snippet" });
        renderSnippet(snippet, hit.snippet || hit.text);
        return h("li", { class: "card" },
          h("h2", { class: "hit-title" }, open),
          h("p", { class: "muted small" },
            [hit.source, hit.collection, hit.section, `score ${hit.score.toFixed(3)}`].filter(Boolean).join(" · ")),
          snippet);
      }));
    } catch (err) {
      status.textContent = "";
      results.replaceChildren();
      showError(error, err);
    }
  });

  return { title: "Search", element: h("div", { class: "page" }, heading, form, status, results), focusTarget: heading };
}
