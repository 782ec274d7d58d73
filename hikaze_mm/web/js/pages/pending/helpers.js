// Small parts of the pending review page: image numbers, hashes (short, full on demand),
// NSFW blur, names and the reason an item waits.

import { copyText, h } from "../../../comfy/shared/dom.js";
import { t } from "../../i18n.js";
import { toast } from "../../components/toast.js";
import { SHORT_HASH } from "./state.js";

const SHA256 = /\b[0-9a-f]{64}\b/gi;

/** The n of a pending image file name "<id>_<n>.<ext>". */
export function pendingN(name) {
  return Number(/^\d+_(\d+)\./.exec(name)[1]);
}

/** A text with every full SHA-256 in it cut to its first SHORT_HASH digits. */
export function shortenHashes(text) {
  return String(text || "").replace(SHA256, (sha) => `${sha.slice(0, SHORT_HASH)}…`);
}

/** A hash as its first SHORT_HASH digits; a disclosure shows the full one and copies it. */
export function hashView(sha) {
  const full = String(sha);
  return h(
    "details",
    { class: "hash-view" },
    h(
      "summary",
      { title: full },
      h("code", { class: "hash-short" }, full.slice(0, SHORT_HASH)),
      h("span", { class: "visually-hidden" }, t("pending.showFullHash")),
    ),
    h(
      "span",
      { class: "hash-more" },
      h("code", { class: "hash-full" }, full),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          onclick: async () => {
            const ok = await copyText(full);
            toast(ok ? t("pending.hashCopied") : t("pending.copyFailed"), ok ? "success" : "error");
          },
        },
        t("pending.copyHash"),
      ),
    ),
  );
}

/** Whether a record (pending item or model) is NSFW: an "nsfw" tag (any case), or
 * nsfw: true in its Civitai or sidecar metadata. */
export function isNsfw(record) {
  if ((record.tags || []).some((tag) => String(tag.name).toLowerCase() === "nsfw")) return true;
  const meta = record.meta || {};
  return [meta.civitai, meta.civitai && meta.civitai.model, meta.sidecar].some(
    (part) => part && typeof part === "object" && part.nsfw === true,
  );
}

/**
 * Wrap the images of an NSFW record for the current mode: "blur" shows them blurred under
 * a button that reveals them; "hide" leaves the caller's placeholder and a label (the
 * caller loads no image); "show" leaves them as they are.
 */
export function nsfwBox(content, name, mode, cls = "") {
  const box = h("div", { class: ["pending-nsfw", cls] }, content);
  if (mode === "show") return box;
  if (mode === "hide") {
    box.classList.add("pending-nsfw-hidden");
    box.append(h("span", { class: "pending-nsfw-tag" }, t("pending.nsfw")));
    return box;
  }
  box.classList.add("pending-nsfw-blurred");
  const reveal = h(
    "button",
    {
      type: "button",
      class: "pending-nsfw-reveal",
      "aria-label": t("pending.revealNsfw", { name }),
      onclick: () => {
        box.classList.remove("pending-nsfw-blurred");
        box.classList.add("pending-nsfw-revealed");
        reveal.remove();
      },
    },
    t("pending.nsfw"),
  );
  box.append(reveal);
  return box;
}

/** Scroll so that `el` starts just below the sticky header (whatever its height: it wraps
 * on a phone), not under it. */
export function scrollBelowHeader(el) {
  const bar = document.querySelector(".topbar");
  const covered = bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
  const top = el.getBoundingClientRect().top + window.scrollY - covered - 8;
  window.scrollTo({ top: Math.max(0, top), behavior: "instant" });
}

/** The name shown for a pending item: its name, else its file name. */
export function displayName(item) {
  return (
    item.name ||
    String(item.path || "")
      .split(/[\\/]/)
      .pop()
  );
}

/** Why an item is in its status: a conflict as information (same content as which model,
 * short hash, wrapped path), an error as an error (hashes shortened, full text on hover). */
export function reasonView(item) {
  if (item.status === "conflict") {
    if (!item.sha256) {
      return item.error ? h("div", { class: "reason reason-conflict" }, shortenHashes(item.error)) : null;
    }
    // The reason reads "same content as the model <sha> (<path>)": show its path.
    const found = /\((.+)\)\s*$/.exec(String(item.error || ""));
    return h(
      "div",
      { class: "reason reason-conflict" },
      h("span", {}, t("pending.sameContent")),
      " ",
      hashView(item.sha256),
      found ? h("code", { class: "path reason-path" }, found[1]) : null,
    );
  }
  if (!item.error) return null;
  return h("div", { class: "reason reason-error", title: item.error }, shortenHashes(item.error));
}

