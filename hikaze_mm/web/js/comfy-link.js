// "Send to workflow" from this page when it is served by ComfyUI (/hikaze/): the ComfyUI
// tabs of the same origin listen on a BroadcastChannel (web/comfy/link.js). The page asks
// who is there, picks the tab that had the focus last, sends it the model and waits for
// its answer.

import { get } from "./api.js";

const CHANNEL = "hikaze-workflow";
const HELLO_MS = 300;
const SENT_MS = 5000;

let host = null;

/** Whether ComfyUI serves this page (the health route says `"host": "comfyui"`). */
export async function insideComfy() {
  if (host === null) {
    host = get("health")
      .then((health) => health.host === "comfyui")
      .catch(() => false);
  }
  return host;
}

function collect(channel, id, type, ms) {
  return new Promise((resolve) => {
    const answers = [];
    const onMessage = (event) => {
      const message = event.data || {};
      if (message.id !== id || message.type !== type) return;
      answers.push(message);
      if (type === "sent") finish();
    };
    const finish = () => {
      channel.removeEventListener("message", onMessage);
      clearTimeout(timer);
      resolve(answers);
    };
    const timer = setTimeout(finish, ms);
    channel.addEventListener("message", onMessage);
  });
}

/** Send a library item ({sha256, name, type, ...}) to the workflow of the ComfyUI tab
 * focused last: "sent", "failed" (ComfyUI could not take it) or "no-comfyui" (no tab). */
export async function sendToWorkflow(item) {
  if (typeof BroadcastChannel !== "function") return "no-comfyui";
  const channel = new BroadcastChannel(CHANNEL);
  try {
    const id = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const hello = collect(channel, id, "here", HELLO_MS);
    channel.postMessage({ type: "hello", id });
    const tabs = await hello;
    if (!tabs.length) return "no-comfyui";
    const target = tabs.reduce((a, b) => (b.focusedAt > a.focusedAt ? b : a));
    const sent = collect(channel, id, "sent", SENT_MS);
    const { sha256, name, type, path } = item;
    channel.postMessage({ type: "send", id, tab: target.tab, item: { sha256, name, type, path } });
    const [answer] = await sent;
    return answer && answer.ok ? "sent" : "failed";
  } finally {
    channel.close();
  }
}
