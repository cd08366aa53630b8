// Generation and retrieval settings, kept in the browser's localStorage
// (nothing is sent anywhere but to this xnai server).
export interface Settings {
  temperature: number; // 0..2
  maxTokens: number; // 0: the server's default
  k: number; // passages per answer, 1..20
  mode: "" | "lexical" | "dense" | "hybrid"; // "": the server's default
  collection: string; // "": all collections
  apiKey: string; // only when the server has server.api_key set
}

const kKey = "xnai.settings";
export const defaults: Settings = {
  temperature: 0.7,
  maxTokens: 0,
  k: 5,
  mode: "",
  collection: "",
  apiKey: "",
};

export function settings(): Settings {
  try {
    const stored = JSON.parse(localStorage.getItem(kKey) ?? "{}");
    return { ...defaults, ...stored };
  } catch {
    return { ...defaults };
  }
}

export function saveSettings(next: Settings) {
  localStorage.setItem(kKey, JSON.stringify(next));
}
