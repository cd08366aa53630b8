// Chat: ask questions about the documents; answers stream in as markdown
// with numbered citations that open the cited passage. Conversations are
// kept by the server (/api/conversations) and listed at the side.
import { api, ask, type AskDone, type Message, type Source } from "../api";
import { announce, errorBox, field, h, showError } from "../dom";
import { renderMarkdown } from "../markdown";
import { openPassage } from "../passage";
import { settings } from "../settings";
import type { View } from "../main";

export function chatView(conversationId: number | null): View {
  const root = h("div", { class: "chat-layout" });
  let controller: AbortController | null = null;
  let currentId = conversationId;

  // --- conversation list -----------------------------------------------------
  const listError = errorBox();
  const convList = h("ul", { class: "conv-list" });
  const aside = h(
    "aside",
    { class: "conversations", "aria-labelledby": "conv-heading" },
    h("div", { class: "row" },
      h("h2", { id: "conv-heading" }, "Conversations"),
      h("a", { href: "#/chat", class: "button secondary" }, "New chat")),
    listError,
    convList,
  );

  async function loadConversations() {
    try {
      const conversations = await api.conversations();
      showError(listError, null);
      convList.replaceChildren(
        ...conversations.map((c) => {
          const title = c.title || `Conversation ${c.id}`;
          const link = h("a", { href: `#/chat/${c.id}`, "aria-current": c.id === currentId ? "page" : undefined }, title);
          const del = h("button", { type: "button", class: "icon danger", "aria-label": `Delete conversation ${title}` }, "×");
          del.addEventListener("click", async () => {
            if (!confirm(`Delete the conversation "${title}"?`)) return;
            try {
              await api.deleteConversation(c.id);
              announce(`Deleted conversation ${title}`);
              if (c.id === currentId) location.hash = "#/chat";
              else void loadConversations();
            } catch (e) {
              showError(listError, e);
            }
          });
          return h("li", {}, link, del);
        }),
      );
      if (!conversations.length) convList.append(h("li", { class: "muted" }, "No conversations yet."));
    } catch (e) {
      showError(listError, `Conversation history unavailable: ${(e as Error).message}`);
    }
  }

  // --- thread and question form -----------------------------------------------
  const heading = h("h1", { tabindex: -1 }, "Chat");
  const thread = h("ol", { class: "thread", "aria-label": "Messages" });
  const formError = errorBox();
  const question = h("textarea", {
    rows: 3, required: true, placeholder: "Ask about your documents…",
    "aria-keyshortcuts": "Enter",
  });
  const collection = h("select", {}, h("option", { value: "" }, "All collections"));
  const send = h("button", { type: "submit" }, "Ask");
  const stop = h("button", { type: "button", class: "secondary" }, "Stop");
  stop.hidden = true;
  const form = h(
    "form",
    { class: "ask-form", "aria-label": "Ask a question" },
    field("Your question", question, "Enter sends, Shift+Enter starts a new line."),
    h("div", { class: "row" }, field("Search in", collection), h("div", { class: "actions" }, send, stop)),
    formError,
  );
  const section = h("section", { class: "conversation", "aria-labelledby": "chat-heading" }, heading, thread, form);
  heading.id = "chat-heading";
  root.append(aside, section);

  question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", () => controller?.abort());

  api.collections().then((list) => {
    const preferred = settings().collection;
    for (const c of list) collection.append(h("option", { value: c.name, selected: c.name === preferred }, c.name));
  }).catch(() => {});

  function citeHandler(sources: Source[]) {
    return (n: number, opener: HTMLElement) => {
      const s = sources.find((x) => x.n === n);
      if (s) void openPassage({ documentId: s.document_id, chunkId: s.chunk_id, title: s.title, source: s.source, text: s.text }, opener);
    };
  }

  function sourcesList(sources: Source[]): HTMLElement {
    const list = h("ol", { class: "sources" });
    for (const s of sources) {
      const button = h("button", { type: "button", class: "link" }, `[${s.n}] ${s.title || s.source}`);
      button.addEventListener("click", () => citeHandler(sources)(s.n, button));
      list.append(h("li", {}, button, h("span", { class: "muted" }, ` ${s.source}`)));
    }
    return h("details", { class: "sources-box" }, h("summary", {}, `Sources (${sources.length})`), list);
  }

  function userMessage(text: string): HTMLElement {
    return h("li", { class: "msg user" }, h("p", { class: "who" }, "You"), h("p", { class: "text" }, text));
  }

  function assistantMessage(content: string, sources: Source[]): { item: HTMLElement; body: HTMLElement; foot: HTMLElement } {
    const body = h("div", { class: "markdown" });
    renderMarkdown(body, content, sources, citeHandler(sources));
    const foot = h("div", { class: "msg-foot" });
    if (sources.length) foot.append(sourcesList(sources));
    const item = h("li", { class: "msg assistant" }, h("p", { class: "who" }, "xnai"), body, foot);
    return { item, body, foot };
  }

  async function loadConversation(id: number) {
    try {
      const conversation = await api.conversation(id);
      heading.textContent = conversation.title || `Conversation ${id}`;
      thread.replaceChildren(
        ...conversation.messages.map((m: Message) =>
          m.role === "user" ? userMessage(m.content) : assistantMessage(m.content, m.sources ?? []).item),
      );
      thread.lastElementChild?.scrollIntoView({ block: "end" });
    } catch (e) {
      showError(formError, e);
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = question.value.trim();
    if (!text || controller) return;
    showError(formError, null);
    const s = settings();
    thread.append(userMessage(text));
    const { item, body, foot } = assistantMessage("", []);
    body.setAttribute("aria-live", "polite");
    body.setAttribute("aria-busy", "true");
    body.append(h("p", { class: "muted" }, "Searching…"));
    thread.append(item);
    item.scrollIntoView({ block: "end" });
    question.value = "";
    send.disabled = true;
    stop.hidden = false;
    controller = new AbortController();

    let answer = "";
    let sources: Source[] = [];
    let frame = 0;
    const render = () => {
      frame = 0;
      renderMarkdown(body, answer, sources, citeHandler(sources));
    };
    try {
      await ask(
        {
          question: text,
          conversation_id: currentId ?? undefined,
          collection: collection.value || undefined,
          k: s.k,
          mode: s.mode || undefined,
          temperature: s.temperature,
          max_tokens: s.maxTokens > 0 ? s.maxTokens : undefined,
        },
        {
          onSources(id, list) {
            sources = list;
            if (currentId === null && id) {
              currentId = id;
              // Keep the address bookmarkable without re-rendering the page.
              history.replaceState(null, "", `#/chat/${id}`);
            }
            body.replaceChildren();
          },
          onToken(piece) {
            answer += piece;
            if (!frame) frame = requestAnimationFrame(render);
          },
          onDone(done: AskDone) {
            if (frame) cancelAnimationFrame(frame);
            render();
            if (sources.length) foot.append(sourcesList(sources));
            const parts = [done.mode === "extractive" ? "Extractive answer (no language model)" : "Generated answer"];
            if (done.usage?.completion_tokens && done.timings?.total_ms) {
              parts.push(`${done.usage.completion_tokens} tokens in ${(done.timings.total_ms / 1000).toFixed(1)} s`);
            }
            foot.append(h("p", { class: "muted meta" }, parts.join(" · ")));
          },
        },
        controller.signal,
      );
      announce("Answer complete");
    } catch (err) {
      if (frame) cancelAnimationFrame(frame);
      if (controller.signal.aborted) {
        render();
        foot.append(h("p", { class: "muted meta" }, "Stopped."));
      } else {
        if (!answer) item.remove();
        showError(formError, err);
      }
    } finally {
      body.setAttribute("aria-busy", "false");
      controller = null;
      send.disabled = false;
      stop.hidden = true;
      question.focus();
      void loadConversations();
    }
  });

  void loadConversations();
  if (conversationId !== null) void loadConversation(conversationId);

  return {
    title: "Chat",
    element: root,
    focusTarget: heading,
    dispose: () => controller?.abort(),
  };
}
