// Collections and documents: upload with progress, list with chunk counts,
// view a document's chunks, delete documents and collections.
import { api, uploadFiles, type Collection, type DocumentInfo } from "../api";
import { announce, errorBox, field, formatBytes, h, showError } from "../dom";
import { openPassage } from "../passage";
import type { View } from "../main";

export function documentsView(): View {
  const heading = h("h1", { tabindex: -1 }, "Documents");
  const pageError = errorBox();

  // --- upload ------------------------------------------------------------------
  const fileInput = h("input", { type: "file", multiple: true, required: true, accept: ".txt,.md,.markdown,.html,.htm,.pdf,text/*,application/pdf" });
  const collectionInput = h("input", { type: "text", value: "default", required: true, list: "collection-names",
    pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}", autocomplete: "off" });
  const names = h("datalist", { id: "collection-names" });
  const progress = h("progress", { max: 1, value: 0, "aria-label": "Upload progress" });
  const progressText = h("span", { class: "muted", "aria-live": "polite" });
  progress.hidden = true;
  const uploadError = errorBox();
  const uploadButton = h("button", { type: "submit" }, "Upload");
  const uploadForm = h(
    "form",
    { class: "card", "aria-labelledby": "upload-heading" },
    h("h2", { id: "upload-heading" }, "Upload"),
    field("Files (text, Markdown, HTML, PDF)", fileInput),
    field("Collection", collectionInput, "Letters, digits, '_', '.', '-'. A new name creates the collection."),
    names,
    h("div", { class: "row" }, uploadButton, progress, progressText),
    uploadError,
  );

  uploadForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const files = Array.from(fileInput.files ?? []);
    if (!files.length) return;
    showError(uploadError, null);
    uploadButton.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    progressText.textContent = "Uploading…";
    try {
      const result = await uploadFiles(files, collectionInput.value.trim(), (f) => {
        progress.value = f;
        progressText.textContent = f < 1 ? `Uploading… ${Math.round(f * 100)}%` : "Indexing…";
      });
      const summary = result.documents
        .map((d) => `${d.title || d.source}: ${d.outcome}, ${d.chunk_count} chunks`)
        .join("; ");
      progressText.textContent = `Done. ${summary}`;
      announce(`Upload done. ${summary}`);
      fileInput.value = "";
      await refresh();
    } catch (err) {
      progressText.textContent = "";
      showError(uploadError, err);
    } finally {
      progress.hidden = true;
      uploadButton.disabled = false;
    }
  });

  // --- collections -------------------------------------------------------------
  const collectionsBody = h("tbody");
  const newName = h("input", { type: "text", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}", autocomplete: "off" });
  const newDescription = h("input", { type: "text", autocomplete: "off" });
  const createError = errorBox();
  const createForm = h(
    "form",
    { class: "inline-form", "aria-label": "Create a collection" },
    field("New collection", newName),
    field("Description", newDescription),
    h("button", { type: "submit" }, "Create"),
  );
  createForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.createCollection(newName.value.trim(), newDescription.value.trim());
      announce(`Created collection ${newName.value}`);
      newName.value = "";
      newDescription.value = "";
      showError(createError, null);
      await refresh();
    } catch (err) {
      showError(createError, err);
    }
  });

  // --- documents ---------------------------------------------------------------
  const filter = h("select", {}, h("option", { value: "" }, "All collections"));
  const documentsBody = h("tbody");
  const docsCaption = h("caption", { class: "visually-hidden" }, "Documents");

  filter.addEventListener("change", () => void loadDocuments());

  function renderCollections(collections: Collection[]) {
    collectionsBody.replaceChildren(
      ...collections.map((c) => {
        const del = h("button", { type: "button", class: "danger", "aria-label": `Delete collection ${c.name}` }, "Delete");
        del.addEventListener("click", async () => {
          if (!confirm(`Delete the collection "${c.name}" with its ${c.document_count} documents?`)) return;
          try {
            await api.deleteCollection(c.name);
            announce(`Deleted collection ${c.name}`);
            if (filter.value === c.name) filter.value = "";
            await refresh();
            heading.focus();
          } catch (err) {
            showError(pageError, err);
          }
        });
        return h("tr", {},
          h("th", { scope: "row" }, c.name),
          h("td", { class: "opt" }, c.description),
          h("td", { class: "num" }, String(c.document_count)),
          h("td", { class: "num" }, String(c.chunk_count)),
          h("td", {}, del));
      }),
    );
    if (!collections.length) collectionsBody.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No collections yet.")));
    const selected = filter.value;
    filter.replaceChildren(h("option", { value: "" }, "All collections"),
      ...collections.map((c) => h("option", { value: c.name, selected: c.name === selected }, c.name)));
    names.replaceChildren(...collections.map((c) => h("option", { value: c.name })));
  }

  function renderDocuments(docs: DocumentInfo[]) {
    documentsBody.replaceChildren(
      ...docs.map((d) => {
        const title = d.title || d.source;
        const view = h("button", { type: "button", class: "link" }, title);
        view.addEventListener("click", () => void openPassage({ documentId: d.id, title, source: d.source }, view));
        const del = h("button", { type: "button", class: "danger", "aria-label": `Delete document ${title}` }, "Delete");
        del.addEventListener("click", async () => {
          if (!confirm(`Delete the document "${title}"?`)) return;
          try {
            await api.deleteDocument(d.id);
            announce(`Deleted document ${title}`);
            await refresh();
            heading.focus();
          } catch (err) {
            showError(pageError, err);
          }
        });
        return h("tr", { "data-document-id": d.id },
          h("th", { scope: "row" }, view, h("div", { class: "muted small" }, d.source)),
          h("td", { class: "opt" }, d.collection),
          h("td", { class: "num" }, String(d.chunk_count)),
          h("td", { class: "num opt" }, formatBytes(d.size_bytes)),
          h("td", {}, del));
      }),
    );
    docsCaption.textContent = `Documents${filter.value ? ` in ${filter.value}` : ""}: ${docs.length}`;
    if (!docs.length) documentsBody.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No documents.")));
  }

  async function loadDocuments() {
    try {
      renderDocuments(await api.documents(filter.value));
    } catch (err) {
      showError(pageError, err);
    }
  }

  async function refresh() {
    try {
      renderCollections(await api.collections());
      showError(pageError, null);
    } catch (err) {
      showError(pageError, err);
    }
    await loadDocuments();
  }

  const element = h(
    "div",
    { class: "page" },
    heading,
    pageError,
    uploadForm,
    h("section", { class: "card", "aria-labelledby": "docs-heading" },
      h("div", { class: "row" }, h("h2", { id: "docs-heading" }, "Documents"), field("Show", filter)),
      h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Documents table" },
        h("table", { class: "documents" }, docsCaption,
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Title"), h("th", { scope: "col", class: "opt" }, "Collection"),
            h("th", { scope: "col", class: "num" }, "Chunks"), h("th", { scope: "col", class: "num opt" }, "Size"),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
          documentsBody))),
    h("section", { class: "card", "aria-labelledby": "coll-heading" },
      h("h2", { id: "coll-heading" }, "Collections"),
      h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Collections table" },
        h("table", {},
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Name"), h("th", { scope: "col", class: "opt" }, "Description"),
            h("th", { scope: "col", class: "num" }, "Documents"), h("th", { scope: "col", class: "num" }, "Chunks"),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
          collectionsBody)),
      createForm,
      createError),
  );
  void refresh();
  return { title: "Documents", element, focusTarget: heading };
}
