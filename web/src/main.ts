// The single-page app: hash routes (#/chat, #/chat/12, #/documents,
// #/search, #/status, #/settings) so the server serves only "/" and the
// hashed assets. Each page is a View built afresh on navigation.
import "./style.css";
import { initPassageDialog } from "./passage";
import { chatView } from "./views/chat";
import { documentsView } from "./views/documents";
import { searchView } from "./views/search";
import { settingsView } from "./views/settings";
import { statusView } from "./views/status";

export interface View {
  title: string;
  element: HTMLElement;
  focusTarget: HTMLElement; // focused after navigation (a heading with tabindex=-1)
  dispose?: () => void;
}

let current: View | null = null;
let firstRender = true;

function route(): View {
  const [page, arg] = location.hash.replace(/^#\/?/, "").split("/");
  switch (page) {
    case "documents": return documentsView();
    case "search": return searchView();
    case "status": return statusView();
    case "settings": return settingsView();
    default: {
      const id = Number(arg);
      return chatView(Number.isInteger(id) && id > 0 ? id : null);
    }
  }
}

function render() {
  current?.dispose?.();
  const dialog = document.getElementById("passage-dialog") as HTMLDialogElement;
  if (dialog.open) dialog.close();
  current = route();
  const main = document.getElementById("main")!;
  main.replaceChildren(current.element);
  document.title = `${current.title} · xnai`;
  const page = location.hash.replace(/^#\/?/, "").split("/")[0] || "chat";
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a[data-page]")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // Move focus to the new page's heading (not on first load, where the
  // browser's own start position is expected).
  if (!firstRender) current.focusTarget.focus();
  firstRender = false;
}

initPassageDialog();
// The skip link must not change the hash (that would navigate).
document.querySelector(".skip-link")?.addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main")!.focus();
});
window.addEventListener("hashchange", render);
render();
