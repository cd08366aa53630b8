// The xnai HTTP API as the UI uses it (same origin; see docs/http-api.md).
// Every failure becomes an ApiError whose message is the server's own
// error message, ready to show to the user.
import { settings } from "./settings";

export class ApiError extends Error {
  constructor(message: string, readonly status = 0, readonly code = "") {
    super(message);
  }
}

export interface Collection {
  name: string;
  description: string;
  document_count: number;
  chunk_count: number;
}

export interface DocumentInfo {
  id: number;
  collection: string;
  source: string;
  title: string;
  media_type: string;
  size_bytes: number;
  chunk_count: number;
  updated_at: number;
}

export interface Chunk {
  id: number;
  ordinal: number;
  text: string;
  section: string;
  page: number;
}

export interface SearchHit {
  chunk_id: number;
  document_id: number;
  collection: string;
  source: string;
  title: string;
  section: string;
  text: string;
  snippet: string;
  score: number;
}

export interface Source {
  n: number;
  chunk_id: number;
  document_id: number;
  source: string;
  title: string;
  text: string;
  score: number;
}

export interface ConversationSummary {
  id: number;
  title: string;
  updated_at: number;
  message_count: number;
}

export interface Message {
  id: number;
  role: "user" | "assistant";
  content: string;
  sources?: Source[];
}

export interface AskDone {
  conversation_id: number;
  message_id: number;
  mode: string;
  citations: number[];
  usage?: { prompt_tokens: number; completion_tokens: number };
  timings?: { retrieval_ms: number; first_token_ms: number; total_ms: number };
}

function authHeaders(): Record<string, string> {
  const key = settings().apiKey;
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The message of an error response, whatever its shape.
async function errorFrom(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`.trim();
  let code = "";
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
    if (body?.error?.code) code = body.error.code;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) message += " (set the API key under Settings)";
  return new ApiError(message, response.status, code);
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError("cannot reach the xnai server");
  }
  if (!response.ok) throw await errorFrom(response);
  return (await response.json()) as T;
}

export const api = {
  health: () => request<Record<string, any>>("GET", "/health"),
  collections: () =>
    request<{ collections: Collection[] }>("GET", "/api/collections").then((r) => r.collections),
  createCollection: (name: string, description: string) =>
    request<Collection>("POST", "/api/collections", { name, description }),
  deleteCollection: (name: string) =>
    request("DELETE", `/api/collections/${encodeURIComponent(name)}`),
  documents: (collection: string) =>
    request<{ documents: DocumentInfo[] }>(
      "GET",
      `/api/documents?limit=1000${collection ? `&collection=${encodeURIComponent(collection)}` : ""}`,
    ).then((r) => r.documents),
  document: (id: number) =>
    request<DocumentInfo & { chunks: Chunk[] }>("GET", `/api/documents/${id}`),
  deleteDocument: (id: number) => request("DELETE", `/api/documents/${id}`),
  search: (params: Record<string, string>) =>
    request<{ hits: SearchHit[] }>("GET", `/api/search?${new URLSearchParams(params)}`).then(
      (r) => r.hits,
    ),
  conversations: () =>
    request<{ conversations: ConversationSummary[] }>("GET", "/api/conversations?limit=100").then(
      (r) => r.conversations,
    ),
  conversation: (id: number) =>
    request<ConversationSummary & { messages: Message[] }>("GET", `/api/conversations/${id}`),
  renameConversation: (id: number, title: string) =>
    request("PATCH", `/api/conversations/${id}`, { title }),
  deleteConversation: (id: number) => request("DELETE", `/api/conversations/${id}`),
  // Prometheus text; the UI reads a few process gauges from it.
  metrics: async (): Promise<string> => {
    const response = await fetch("/metrics", { headers: authHeaders() });
    if (!response.ok) throw await errorFrom(response);
    return response.text();
  },
};

// Multipart upload with progress (fetch cannot report upload progress).
export function uploadFiles(
  files: File[],
  collection: string,
  onProgress: (fraction: number) => void,
): Promise<{ documents: (DocumentInfo & { outcome: string })[] }> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("collection", collection);
    for (const file of files) form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/documents");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new ApiError("upload failed: cannot reach the xnai server"));
    xhr.onload = () => {
      let body: any = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // handled below
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new ApiError(body?.error?.message ?? `upload failed: HTTP ${xhr.status}`, xhr.status));
    };
    xhr.send(form);
  });
}

export interface AskRequest {
  question: string;
  conversation_id?: number;
  collection?: string;
  k?: number;
  mode?: string;
  temperature?: number;
  max_tokens?: number;
}

export interface AskHandlers {
  onSources(conversationId: number, sources: Source[]): void;
  onToken(text: string): void;
  onDone(done: AskDone): void;
}

// POST /api/ask as Server-Sent Events (EventSource cannot POST, so the
// stream is read and split into events here).
export async function ask(body: AskRequest, handlers: AskHandlers, signal: AbortSignal) {
  let response: Response;
  try {
    response = await fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
      body: JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new ApiError("cannot reach the xnai server");
  }
  if (!response.ok) throw await errorFrom(response);
  if (!response.body) throw new ApiError("the server sent no answer");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let finished = false;
  const dispatch = (event: string, data: string) => {
    const payload = data ? JSON.parse(data) : {};
    switch (event) {
      case "sources":
        handlers.onSources(payload.conversation_id, payload.sources ?? []);
        break;
      case "token":
        handlers.onToken(payload.text ?? "");
        break;
      case "done":
        finished = true;
        handlers.onDone(payload as AskDone);
        break;
      case "error":
        finished = true;
        throw new ApiError(payload.message ?? "the answer failed", 0, payload.code ?? "");
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      dispatch(event, data.join("\n"));
    }
  }
  if (!finished) throw new ApiError("the answer stream ended early");
}
