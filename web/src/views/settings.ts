// Settings: generation and retrieval parameters for the chat, stored in
// this browser only.
import { api } from "../api";
import { field, h } from "../dom";
import { defaults, saveSettings, settings, type Settings } from "../settings";
import type { View } from "../main";

export function settingsView(): View {
  const heading = h("h1", { tabindex: -1 }, "Settings");
  const s = settings();
  const temperature = h("input", { type: "number", min: 0, max: 2, step: 0.05, value: s.temperature, required: true });
  const maxTokens = h("input", { type: "number", min: 0, max: 32768, step: 1, value: s.maxTokens, required: true });
  const k = h("input", { type: "number", min: 1, max: 20, step: 1, value: s.k, required: true });
  const mode = h("select", {},
    ...[["", "Server default"], ["lexical", "Lexical (BM25)"], ["dense", "Dense (embeddings)"], ["hybrid", "Hybrid"]]
      .map(([value, label]) => h("option", { value, selected: value === s.mode }, label)));
  const collection = h("select", {}, h("option", { value: "" }, "All collections"));
  const apiKey = h("input", { type: "password", value: s.apiKey, autocomplete: "off" });
  const saved = h("p", { class: "muted", role: "status" });
  const reset = h("button", { type: "button", class: "secondary" }, "Reset to defaults");

  api.collections().then((list) => {
    for (const c of list) collection.append(h("option", { value: c.name, selected: c.name === s.collection }, c.name));
  }).catch(() => {});

  const form = h("form", { class: "card settings-form", "aria-labelledby": "gen-heading" },
    h("h2", { id: "gen-heading" }, "Answers"),
    field("Temperature", temperature, "0 is deterministic; higher is more varied (0–2)."),
    field("Maximum answer tokens", maxTokens, "0 uses the server's default."),
    field("Passages per answer", k, "How many retrieved passages the answer is built from (1–20)."),
    field("Retrieval mode", mode),
    field("Default collection", collection),
    h("h2", {}, "Access"),
    field("API key", apiKey, "Only needed when the server has an API key configured. Kept in this browser."),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Save"), reset),
    saved);

  function collect(): Settings {
    return {
      temperature: Number(temperature.value),
      maxTokens: Math.trunc(Number(maxTokens.value)),
      k: Math.trunc(Number(k.value)),
      mode: mode.value as Settings["mode"],
      collection: collection.value,
      apiKey: apiKey.value.trim(),
    };
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    saveSettings(collect());
    saved.textContent = "Saved.";
  });
  reset.addEventListener("click", () => {
    temperature.value = String(defaults.temperature);
    maxTokens.value = String(defaults.maxTokens);
    k.value = String(defaults.k);
    mode.value = defaults.mode;
    collection.value = defaults.collection;
    saveSettings({ ...collect(), apiKey: apiKey.value.trim() });
    saved.textContent = "Defaults restored and saved.";
  });

  return { title: "Settings", element: h("div", { class: "page" }, heading, form), focusTarget: heading };
}
