// Downloads page: a form that queues a download (POST downloads: a pasted URL, a Civitai
// or Hugging Face source, or a hash, with an optional type and expected SHA-256), and the
// queue and history (GET downloads, polled every second while something moves) with each
// download's progress, speed, time left and error, and its Pause, Resume, Cancel and
// Remove buttons. Rows are updated in place, so a focused button keeps its focus.

import { del, get, post } from "../api.js";
import { h, replaceChildren } from "../../comfy/shared/dom.js";
import { ACTIVE, downloadName, fractionDone, progressLine } from "../../comfy/shared/downloads.js";
import { t } from "../i18n.js";
import { describeError, toast, toastError } from "../components/toast.js";
import { loadFailed, progressBar } from "../components/widgets.js";

const FAST_MS = 1000;
const SLOW_MS = 5000;
const TYPES = [
  "checkpoints", "loras", "embeddings", "vae", "controlnet", "upscale_models", "clip",
  "clip_vision", "text_encoders", "unet", "diffusion_models", "hypernetworks", "ipadapter",
  "other",
]; // prettier-ignore
// The buttons each status offers: [label key, API action].
const ACTIONS = {
  queued: [["downloads.pause", "pause"], ["downloads.cancel", "cancel"]],
  running: [["downloads.pause", "pause"], ["downloads.cancel", "cancel"]],
  verifying: [],
  paused: [["downloads.resume", "resume"], ["downloads.cancel", "cancel"]],
  failed: [["downloads.resume", "resume"], ["downloads.remove", "delete"]],
  done: [["downloads.remove", "delete"]],
  cancelled: [["downloads.remove", "delete"]],
};

function statusBadge(status) {
  return h("span", { class: ["badge", `dl-status-${status}`] }, t(`status.${status}`, { _: status }));
}

/** One download's row, updated in place by `update(view)`. */
function downloadRow(view, act) {
  const name = downloadName(view);
  const title = h("h3", { class: "dl-name" }, name);
  const badge = h("span", {});
  const bar = progressBar(t("downloads.progressOf", { name }));
  const line = h("p", { class: "dl-line" });
  const actions = h("div", { class: "dl-actions" });
  const el = h(
    "li",
    { class: "dl-row", dataset: { id: String(view.id) } },
    h("div", { class: "dl-head" }, title, badge),
    bar.el,
    line,
    actions,
  );
  let shownStatus = null;

  function update(next) {
    const nextName = downloadName(next);
    if (title.textContent !== nextName) title.textContent = nextName;
    const fraction = fractionDone(next);
    bar.set(fraction === null ? null : fraction * 100);
    line.textContent = progressLine(next);
    line.classList.toggle("dl-error", next.status === "failed");
    if (next.status === shownStatus) return;
    shownStatus = next.status;
    replaceChildren(badge, statusBadge(next.status));
    replaceChildren(
      actions,
      (ACTIONS[next.status] || []).map(([key, action]) =>
        h(
          "button",
          {
            type: "button",
            class: ["btn", "btn-small", action === "cancel" || action === "delete" ? "btn-danger" : null],
            "aria-label": t("downloads.actionFor", { action: t(key), name: nextName }),
            onclick: () => act(next, action, t(key)),
          },
          t(key),
        ),
      ),
    );
  }

  update(view);
  return { el, update };
}

/** The form: source, type, expected hash; `onQueued(answer, source)` after a 202. */
function downloadForm(onQueued) {
  const source = h("input", {
    class: "input",
    id: "dl-source",
    name: "source",
    required: true,
    autocomplete: "off",
    placeholder: "https://…, civitai:123, sha256:…",
    "aria-describedby": "dl-source-hint",
  });
  const type = h(
    "select",
    { class: "input", id: "dl-type", name: "type" },
    h("option", { value: "" }, t("downloads.typeAuto")),
    TYPES.map((key) => h("option", { value: key }, key)),
  );
  const sha = h("input", { class: "input", id: "dl-sha256", name: "sha256", autocomplete: "off", spellcheck: "false" });
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, t("downloads.start"));
  const form = h(
    "form",
    { class: "dl-form", "aria-labelledby": "dl-form-title" },
    h("h2", { id: "dl-form-title" }, t("downloads.formTitle")),
    h(
      "div",
      { class: "form-row" },
      h("label", { for: "dl-source" }, t("downloads.source")),
      source,
      h("span", { class: "muted", id: "dl-source-hint" }, t("downloads.sourceHint")),
    ),
    h(
      "div",
      { class: "form-grid" },
      h("div", { class: "form-row" }, h("label", { for: "dl-type" }, t("downloads.type")), type),
      h("div", { class: "form-row" }, h("label", { for: "dl-sha256" }, t("downloads.sha256")), sha),
    ),
    error,
    h("div", { class: "form-actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { source: source.value.trim() };
    if (type.value) body.type = type.value;
    if (sha.value.trim()) body.sha256 = sha.value.trim();
    error.textContent = "";
    submit.disabled = true;
    try {
      const answer = await post("downloads", body);
      source.value = "";
      sha.value = "";
      onQueued(answer, body.source);
    } catch (err) {
      error.textContent = describeError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export function mountDownloads(root) {
  let stopped = false;
  let timer = null;
  const rows = new Map(); // id -> {el, update}
  const list = h("ol", { class: "dl-list", "aria-labelledby": "dl-queue-title" });
  const empty = h("p", { class: "list-message dl-empty", hidden: true }, t("downloads.none"));
  const failure = h("div", {});

  async function act(view, action, label) {
    try {
      if (action === "delete") await del(`downloads/${view.id}`);
      else await post(`downloads/${view.id}/${action}`, {});
    } catch (err) {
      toastError(err, t("downloads.actionFailed", { action: label }));
    }
    await load();
  }

  const form = downloadForm((answer, source) => {
    const key = answer.status === "done" ? "downloads.alreadyHave" : "downloads.queued";
    toast(t(key, { name: source }), answer.status === "done" ? "success" : "info");
    load();
  });

  root.append(
    h(
      "section",
      { class: "page page-downloads", "aria-labelledby": "downloads-title" },
      h("h1", { id: "downloads-title", tabindex: "-1" }, t("nav.downloads")),
      h("p", { class: "muted" }, t("downloads.intro")),
      form,
      h("h2", { id: "dl-queue-title" }, t("downloads.queue")),
      failure,
      list,
      empty,
    ),
  );

  function show(views) {
    const seen = new Set();
    let before = null;
    for (const view of views) {
      seen.add(view.id);
      let row = rows.get(view.id);
      if (row) row.update(view);
      else {
        row = downloadRow(view, act);
        rows.set(view.id, row);
      }
      const at = before ? before.nextSibling : list.firstChild;
      if (row.el !== at) list.insertBefore(row.el, at);
      before = row.el;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.el.remove();
        rows.delete(id);
      }
    }
    empty.hidden = views.length > 0;
  }

  async function load() {
    clearTimeout(timer);
    let views = null;
    try {
      views = await get("downloads");
      if (stopped) return;
      replaceChildren(failure);
      show(views);
    } catch (err) {
      if (stopped) return;
      replaceChildren(failure, loadFailed(t("downloads.loadFailed", { error: describeError(err) }), load));
    }
    const moving = views && views.some((v) => ACTIVE.has(v.status));
    timer = setTimeout(load, moving ? FAST_MS : SLOW_MS);
  }

  load();
  return {
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
