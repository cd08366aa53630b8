// Status: what /health, /metrics and the collections report — models,
// memory budget and use, queue, tokens/s and index sizes; refreshed every
// few seconds while the page is shown.
import { api } from "../api";
import { errorBox, formatBytes, h, showError } from "../dom";
import type { View } from "../main";

const kRefreshMs = 5000;

function metric(text: string, name: string): number | undefined {
  const match = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, "m"));
  return match ? Number(match[1]) : undefined;
}

function dl(rows: [string, string][]): HTMLElement {
  return h("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function duration(seconds: number): string {
  const s = Math.floor(seconds);
  const parts = [[Math.floor(s / 86400), "d"], [Math.floor(s / 3600) % 24, "h"], [Math.floor(s / 60) % 60, "min"], [s % 60, "s"]] as const;
  return parts.filter(([n], i) => n > 0 || i === 3).map(([n, u]) => `${n} ${u}`).join(" ");
}

export function statusView(): View {
  const heading = h("h1", { tabindex: -1 }, "Status");
  const error = errorBox();
  const server = h("section", { class: "card", "aria-labelledby": "st-server" }, h("h2", { id: "st-server" }, "Server"));
  const models = h("section", { class: "card", "aria-labelledby": "st-models" }, h("h2", { id: "st-models" }, "Models"));
  const index = h("section", { class: "card", "aria-labelledby": "st-index" }, h("h2", { id: "st-index" }, "Index"));
  const updated = h("p", { class: "muted small" });
  let timer = 0;

  async function refresh() {
    try {
      const [health, metrics, collections] = await Promise.all([
        api.health(),
        api.metrics().catch(() => ""),
        api.collections().catch(() => []),
      ]);
      showError(error, null);
      const rss = metric(metrics, "process_resident_memory_bytes");
      server.replaceChildren(server.firstChild!, dl([
        ["Status", `${health.status}${health.ready ? ", ready" : ", store opening"}`],
        ["Version", String(health.version)],
        ["Uptime", duration(health.uptime_seconds ?? 0)],
        ["Memory in use (RSS)", rss === undefined ? "–" : formatBytes(rss)],
      ]));

      const list: Record<string, any>[] = health.models ?? [];
      models.replaceChildren(models.firstChild!);
      if (!list.length) models.append(h("p", { class: "muted" }, "No model loaded: answers are extractive (the best passages)."));
      for (const m of list) {
        const rows: [string, string][] = [["Kind", String(m.kind)]];
        if (m.context) rows.push(["Context", `${m.context} tokens`]);
        if (m.queued !== undefined) rows.push(["Queue", `${m.queued} waiting, ${m.active} active`]);
        if (m.gen_tok_s !== undefined) rows.push(["Generation", `${Number(m.gen_tok_s).toFixed(1)} tokens/s`]);
        if (m.prompt_tok_s !== undefined) rows.push(["Prompt", `${Number(m.prompt_tok_s).toFixed(1)} tokens/s`]);
        if (m.memory_budget_bytes !== undefined) {
          const kv = (m.kv_pages_used ?? 0) * (m.kv_page_bytes ?? 0);
          rows.push(["Memory budget", formatBytes(m.memory_budget_bytes)]);
          rows.push(["Weights", formatBytes(m.weights_bytes ?? 0)]);
          rows.push(["KV cache", `${m.kv_pages_used} of ${m.kv_pages_max} pages (${formatBytes(kv)})`]);
        }
        if (m.dim) rows.push(["Dimension", String(m.dim)]);
        if (m.url) rows.push(["Server", String(m.url)]);
        if (m.breaker) rows.push(["Circuit breaker", String(m.breaker)]);
        models.append(h("h3", {}, String(m.id)), dl(rows));
        if (m.memory_budget_bytes) {
          const used = (m.weights_bytes ?? 0) + (m.kv_pages_used ?? 0) * (m.kv_page_bytes ?? 0);
          models.append(h("label", { class: "meter-label" }, "Budget used",
            h("meter", { min: 0, max: m.memory_budget_bytes, value: used })));
        }
      }

      const documents = collections.reduce((n, c) => n + c.document_count, 0);
      const chunks = collections.reduce((n, c) => n + c.chunk_count, 0);
      index.replaceChildren(index.firstChild!, dl([
        ["Collections", String(collections.length)],
        ["Documents", String(documents)],
        ["Chunks", String(chunks)],
      ]));
      if (collections.length) {
        index.append(h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Collection"),
            h("th", { scope: "col", class: "num" }, "Documents"), h("th", { scope: "col", class: "num" }, "Chunks"))),
          h("tbody", {}, ...collections.map((c) => h("tr", {}, h("th", { scope: "row" }, c.name),
            h("td", { class: "num" }, String(c.document_count)), h("td", { class: "num" }, String(c.chunk_count))))))));
      }
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${kRefreshMs / 1000} s.`;
    } catch (err) {
      showError(error, err);
    }
  }

  void refresh();
  timer = window.setInterval(refresh, kRefreshMs);
  return {
    title: "Status",
    element: h("div", { class: "page" }, heading, error, h("div", { class: "grid" }, server, models, index), updated),
    focusTarget: heading,
    dispose: () => window.clearInterval(timer),
  };
}
