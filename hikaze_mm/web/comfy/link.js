// The manager's own page (/hikaze/, opened in another tab of the same ComfyUI origin) sends
// models to this workflow over a BroadcastChannel. Several ComfyUI tabs may be open: the
// page asks who is there ("hello"), each tab answers with when it last had the focus, and
// the page sends the model to the most recent one ("send" names that tab), which answers
// "sent" with the outcome. No side effects at import.

import { canSend, sendToWorkflow } from "./workflow.js";

export const CHANNEL = "hikaze-workflow";

const tab = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
let focusedAt = document.hasFocus() ? Date.now() : 0;

/** Answer the manager's page: who is here, and models sent to this tab's workflow. */
export function installLink() {
  if (typeof BroadcastChannel !== "function") return;
  const channel = new BroadcastChannel(CHANNEL);
  window.addEventListener("focus", () => {
    focusedAt = Date.now();
  });
  channel.addEventListener("message", async (event) => {
    const message = event.data || {};
    if (message.type === "hello") {
      channel.postMessage({ type: "here", id: message.id, tab, focusedAt });
    } else if (message.type === "send" && message.tab === tab) {
      const item = message.item || {};
      const ok = canSend(item) && (await sendToWorkflow(item)) !== null;
      channel.postMessage({ type: "sent", id: message.id, ok });
    }
  });
}
