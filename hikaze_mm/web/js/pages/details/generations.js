// The details panel's "Made with this model" strip: the images HikazeSaveImage saved with
// this model (GET models/{sha}/generations), newest first, a page at a time ("Load more"),
// each with its prompt, seed and sampler, a link to the full image, and "Use as cover": the
// image becomes one of the model's images (POST generations/{id}/add-to-model), then its
// cover (PUT images/{sha}/order with the new seq first). A file the user deleted shows as
// "file deleted".

import { bumpImageVersion, get, post, request, seqOf } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatDate } from "../../format.js";
import { t } from "../../i18n.js";
import { describeError, toast, toastError } from "../../components/toast.js";
import { loadFailed } from "../../components/widgets.js";

export const PAGE_SIZE = 12;

/** "Seed 123 · Euler · 20 steps · CFG 7 · 832×1216": what is known of the sampling. */
export function generationFacts(item) {
  const facts = [];
  if (item.seed !== null && item.seed !== undefined) facts.push(t("made.seed", { seed: String(item.seed) }));
  if (item.sampler) facts.push(item.sampler);
  if (item.steps) facts.push(t("made.steps", { n: item.steps }));
  if (item.cfg !== null && item.cfg !== undefined) facts.push(t("made.cfg", { cfg: String(item.cfg) }));
  if (item.width && item.height) facts.push(`${item.width}×${item.height}`);
  return facts.join(" · ");
}

/** The image (a link to it at full size), or the placeholder of a deleted file. */
function media(item, n) {
  if (item.missing) {
    return h("div", { class: "made-missing", role: "img", "aria-label": t("made.missingLabel", { n }) }, t("made.missing"));
  }
  return h(
    "a",
    {
      class: "made-open",
      href: item.image_url,
      target: "_blank",
      rel: "noopener",
      "aria-label": t("made.openLabel", { n }),
    },
    h("img", { src: item.image_url, alt: "", loading: "lazy", decoding: "async", draggable: "false" }),
  );
}

/** One generation: image, prompt (full text on hover), facts, date, and "Use as cover". */
function generationItem(item, n, useAsCover) {
  const prompt = String(item.prompt || "").trim();
  const facts = generationFacts(item);
  const cover = item.missing
    ? null
    : h(
        "button",
        {
          type: "button",
          class: "btn btn-small made-cover",
          "aria-label": t("made.useAsCoverLabel", { n }),
          onclick: (event) => useAsCover(item, event.currentTarget),
        },
        t("made.useAsCover"),
      );
  return h(
    "li",
    {
      class: ["made-item", item.missing ? "missing" : ""],
      title: [prompt, facts].filter(Boolean).join("\n"),
      dataset: { id: String(item.id) },
    },
    media(item, n),
    h(
      "div",
      { class: "made-caption" },
      h("p", { class: ["made-prompt", prompt ? "" : "muted"] }, prompt || t("made.noPrompt")),
      facts ? h("p", { class: "made-facts muted" }, facts) : null,
      h("p", { class: "made-date muted" }, formatDate(item.created_at)),
      cover,
    ),
  );
}

/**
 * The strip for model `sha`. `onImages(names, message)` is the panel's: the model's images
 * changed (names null: read them again). Answers {el, sha}.
 */
export function generationsStrip(sha, { onImages }) {
  const state = { items: [], total: 0, loading: false };
  const list = h("ul", { class: "made-list", "aria-label": t("made.title") });
  const count = h("span", { class: "made-count muted" });
  const message = h("div", { class: "made-message" });
  const more = h(
    "button",
    { type: "button", class: "btn btn-small made-more", hidden: true, onclick: () => load(true) },
    t("made.more"),
  );

  function renderCount() {
    count.textContent = state.total ? t("made.count", { shown: state.items.length, n: state.total }) : "";
    more.hidden = state.loading || state.items.length >= state.total;
  }

  async function load(byButton = false) {
    if (state.loading) return;
    state.loading = true;
    more.disabled = true;
    const offset = state.items.length;
    try {
      const page = await get(`models/${sha}/generations`, { offset, limit: PAGE_SIZE });
      state.total = page.total;
      const fresh = page.items.map((item, i) => generationItem(item, offset + i + 1, useAsCover));
      state.items.push(...page.items);
      list.append(...fresh);
      replaceChildren(message, state.total ? null : h("p", { class: "muted made-empty" }, t("made.empty")));
      state.loading = false;
      renderCount();
      // "Load more" is gone once all are shown: its focus goes to the first new item.
      if (byButton && more.hidden && fresh.length) fresh[0].querySelector("a, button").focus();
    } catch (err) {
      state.loading = false;
      renderCount();
      replaceChildren(message, loadFailed(t("made.loadFailed", { error: describeError(err) }), () => load()));
    } finally {
      more.disabled = false;
    }
  }

  async function useAsCover(item, button) {
    button.disabled = true;
    let added = null;
    try {
      added = await post(`generations/${item.id}/add-to-model`, { sha256: sha });
      bumpImageVersion(sha); // the new seq may be one a deleted image had: fetch tiers afresh
      const rest = added.images.map(seqOf).filter((seq) => seq !== added.seq);
      const answer = await request("PUT", `images/${sha}/order`, { json: { order: [added.seq, ...rest] } });
      toast(t("made.coverSet"), "success");
      onImages(answer.images, t("made.coverSet"));
    } catch (err) {
      toastError(err, t("made.coverFailed"));
      if (added) onImages(null, ""); // it was added but is not the cover: show what is there
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  }

  const el = h(
    "section",
    { class: "details-made", "aria-labelledby": "made-title" },
    h("h3", { id: "made-title", class: "made-title" }, t("made.title"), " ", count),
    list,
    message,
    more,
  );
  load();
  return { el, sha };
}
