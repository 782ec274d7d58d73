// Toasts through ComfyUI's own toast manager (app.extensionManager.toast, PrimeVue
// messages). No side effects at import.

import { app } from "../../scripts/app.js";

/** Show a toast; `life` in ms (0: stays until closed). Returns the message (for remove). */
export function toast(severity, summary, detail = "", { life = 3500, id = undefined } = {}) {
  const manager = app.extensionManager && app.extensionManager.toast;
  const message = { severity, summary, detail };
  if (life) message.life = life;
  if (id !== undefined) message.id = id;
  if (manager && typeof manager.add === "function") manager.add(message);
  return message;
}

/** Remove a toast shown with `toast` (matched by its id). */
export function removeToast(message) {
  const manager = app.extensionManager && app.extensionManager.toast;
  if (message && manager && typeof manager.remove === "function") manager.remove(message);
}
