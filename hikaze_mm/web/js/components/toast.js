// Short notifications in a live region; errors stay until dismissed.

import { h } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";

function region() {
  return document.getElementById("toasts");
}

/** Show a message. kind: "info" | "success" | "error". */
export function toast(message, kind = "info", { timeout = 4000 } = {}) {
  const close = () => item.remove();
  const item = h(
    "div",
    { class: ["toast", `toast-${kind}`], role: kind === "error" ? "alert" : "status" },
    h("span", { class: "toast-text" }, message),
    h(
      "button",
      { class: "btn-icon", type: "button", "aria-label": t("common.dismiss"), onclick: close },
      "×",
    ),
  );
  region().append(item);
  if (kind !== "error") setTimeout(close, timeout);
  return item;
}

/** Show an API (or other) error to the user: "<error>: <detail>". */
export function toastError(err, context = "") {
  const text = describeError(err);
  return toast(context ? `${context}: ${text}` : text, "error");
}

/** One line for an error thrown by api.js (ApiError) or anything else. */
export function describeError(err) {
  if (err && err.error) return err.detail ? `${err.error}: ${err.detail}` : err.error;
  return (err && err.message) || String(err);
}
