// The details panel's gallery: a model's images in their display order (the first is the
// cover), each with "Make cover", "Move earlier/later" (or drag it onto another image) and
// Delete; drag and drop files (or a file picker) to upload; a click opens the full-screen viewer at the high tier. Images of an
// NSFW model follow the "hikaze.nsfw" setting: blurred until clicked, hidden, or shown.

import { del, imageUrl, request, seqOf } from "../api.js";
import { h } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";
import { createImageViewer } from "./image-viewer.js";
import { nsfwMode } from "./nsfw.js";
import { toast, toastError } from "./toast.js";

let viewer = null;
const DRAG_TYPE = "application/x-hikaze-image";

/** Whether a record is NSFW: the API's `nsfw` when given, else an "nsfw" tag (any case)
 * or meta.civitai.nsfw. */
export function isNsfw(record) {
  if (typeof record.nsfw === "boolean") return record.nsfw;
  const tags = record.tags || [];
  if (tags.some((tag) => String(tag.name || tag).toLowerCase() === "nsfw")) return true;
  const civitai = record.meta && record.meta.civitai;
  return Boolean(civitai && civitai.nsfw === true);
}

function thumb(name, i) {
  return h("img", { src: imageUrl(name, "medium"), alt: t("details.imageAlt", { n: i + 1 }), loading: "lazy" });
}


/** Delete an image: a first click arms the button, a second within 4 s deletes. */
function deleteButton(sha, name, i, onImages) {
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-small btn-danger gallery-delete",
      "aria-label": t("details.deleteImage", { n: i + 1 }),
    },
    t("common.delete"),
  );
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = t("details.confirmDelete");
      setTimeout(() => {
        armed = false;
        if (button.isConnected) button.textContent = t("common.delete");
      }, 4000);
      return;
    }
    button.disabled = true;
    try {
      await del(`images/${sha}/${seqOf(name)}`);
      toast(t("details.imageDeleted"), "success");
      onImages(null, "", null);
    } catch (err) {
      button.disabled = false;
      toastError(err, t("details.deleteFailed"));
    }
  });
  return button;
}


/** An image's tools: make cover (or the cover badge), move earlier and later, delete. */
function imageTools(i, count, actions) {
  const first = i === 0;
  const last = i === count - 1;
  return h(
    "div",
    { class: "gallery-tools" },
    first
      ? h("span", { class: "badge cover-badge" }, t("details.cover"))
      : h(
          "button",
          {
            type: "button",
            class: "btn btn-small gallery-cover",
            "aria-label": t("details.makeCoverLabel", { n: i + 1 }),
            onclick: () => actions.makeCover(i),
          },
          t("details.makeCover"),
        ),
    h(
      "button",
      {
        type: "button",
        class: "btn btn-small gallery-earlier",
        "aria-label": t("details.moveEarlier", { n: i + 1 }),
        title: t("details.moveEarlier", { n: i + 1 }),
        disabled: first,
        onclick: () => actions.move(i, -1),
      },
      "←",
    ),
    h(
      "button",
      {
        type: "button",
        class: "btn btn-small gallery-later",
        "aria-label": t("details.moveLater", { n: i + 1 }),
        title: t("details.moveLater", { n: i + 1 }),
        disabled: last,
        onclick: () => actions.move(i, 1),
      },
      "→",
    ),
    actions.remove,
  );
}

/** Drag and drop onto another image puts it at that place (the arrows do the same). */
function draggableImage(figure, i, moveTo) {
  figure.draggable = true;
  figure.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData(DRAG_TYPE, String(i));
    event.dataTransfer.effectAllowed = "move";
  });
  figure.addEventListener("dragover", (event) => {
    if (!event.dataTransfer.types.includes(DRAG_TYPE)) return; // files go to the drop zone
    event.preventDefault();
    figure.classList.add("drag-target");
  });
  figure.addEventListener("dragleave", () => figure.classList.remove("drag-target"));
  figure.addEventListener("drop", (event) => {
    figure.classList.remove("drag-target");
    const from = Number(event.dataTransfer.getData(DRAG_TYPE));
    if (!event.dataTransfer.types.includes(DRAG_TYPE) || Number.isNaN(from)) return;
    event.preventDefault();
    if (from !== i) moveTo(from, i);
  });
}

/** After a move, the focus follows the image to its new place (the same action, or the
 * other arrow when that one is now disabled). */
function focusMoved(items, names, focus) {
  if (focus && focus.name) {
    const figure = items[names.indexOf(focus.name)];
    if (figure) {
      const pick = {
        earlier: [".gallery-earlier", ".gallery-later"],
        later: [".gallery-later", ".gallery-earlier"],
        open: [".gallery-open"],
      }[focus.action] || [".gallery-open"];
      const target = pick.map((sel) => figure.querySelector(sel)).find((el) => el && !el.disabled);
      queueMicrotask(() => (target || figure.querySelector(".gallery-open")).focus());
    }
  }
}

/** The upload drop zone, its hidden file input and its status line. */
function uploader(sha, onImages) {
  const fileInput = h("input", {
    type: "file",
    accept: "image/*",
    multiple: true,
    class: "visually-hidden",
    tabindex: "-1",
    "aria-hidden": "true",
  });
  const status = h("p", { class: "muted upload-status", role: "status", "aria-live": "polite" });
  const drop = h(
    "button",
    { type: "button", class: "dropzone", onclick: () => fileInput.click() },
    t("details.dropHint"),
  );
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    upload([...(event.dataTransfer ? event.dataTransfer.files : [])]);
  });
  fileInput.addEventListener("change", () => {
    upload([...fileInput.files]);
    fileInput.value = "";
  });

  async function upload(files) {
    if (!files.length) return;
    let done = 0;
    for (const file of files) {
      status.textContent = t("details.uploading", { name: file.name, n: done + 1, total: files.length });
      try {
        await request("POST", `images/${sha}`, {
          body: file,
          headers: { "Content-Type": file.type || "application/octet-stream" },
        });
        done += 1;
      } catch (err) {
        toastError(err, t("details.uploadFailed", { name: file.name }));
      }
    }
    status.textContent = done ? t("details.uploaded", { n: done }) : "";
    if (done) onImages(null, status.textContent, null);
  }
  return { drop, fileInput, status };
}

/**
 * The gallery section of `record` ({sha256, name, images, tags, meta, nsfw}).
 * `onImages(names, message)` is called with the new list after an upload, a delete or a
 * reorder (the panel re-renders the gallery with it); `revealed` is a Set of image names
 * the user chose to see (kept by the panel across re-renders).
 */
export function imageGallery(record, { onImages, revealed = new Set(), focus = null }) {
  const names = record.images || [];
  const sha = record.sha256;
  const mode = isNsfw(record) ? nsfwMode() : "show";
  const blurred = (name) => mode === "blur" && !revealed.has(name);
  if (!viewer) viewer = createImageViewer();
  const items = [];

  async function saveOrder(order, message, focusName, focusAction) {
    try {
      const answer = await request("PUT", `images/${sha}/order`, { json: { order } });
      onImages(answer.images, message, { name: focusName, action: focusAction });
    } catch (err) {
      toastError(err, t("details.orderFailed"));
      // The images changed elsewhere (409): show what is there now.
      if (err.status === 409) onImages(null, "", null);
    }
  }

  function move(i, step) {
    const order = names.map(seqOf);
    const j = i + step;
    [order[i], order[j]] = [order[j], order[i]];
    saveOrder(order, t("details.moved", { n: j + 1 }), names[i], step < 0 ? "earlier" : "later");
  }

  function moveTo(from, to) {
    const order = names.map(seqOf);
    const [seq] = order.splice(from, 1);
    order.splice(to, 0, seq);
    saveOrder(order, t("details.moved", { n: to + 1 }), names[from], "open");
  }

  function makeCover(i) {
    const order = names.map(seqOf);
    const [seq] = order.splice(i, 1);
    order.unshift(seq);
    saveOrder(order, t("details.coverSet"), names[i], "open");
  }

  function openViewer(i) {
    viewer.open(names, i, {
      title: record.name || "",
      isHidden: (name) => mode !== "show" && !revealed.has(name),
      onReveal: (name) => reveal(name),
      onClose: (last) => {
        const item = items[last];
        if (item && item.isConnected) item.querySelector(".gallery-open").focus();
      },
    });
  }

  function reveal(name) {
    revealed.add(name);
    const item = items[names.indexOf(name)];
    if (!item) return;
    item.classList.remove("nsfw-blurred", "nsfw-hidden");
    const cover = item.querySelector(".nsfw-show");
    if (cover) cover.remove();
    const open = item.querySelector(".gallery-open");
    if (!open.querySelector("img")) open.replaceChildren(thumb(name, names.indexOf(name)));
  }

  function item(name, i) {
    const hidden = mode === "hide" && !revealed.has(name);
    const open = h(
      "button",
      {
        type: "button",
        class: "gallery-open",
        "aria-label": t("details.openImage", { n: i + 1 }),
        onclick: () => openViewer(i),
      },
      hidden ? h("span", { class: "nsfw-placeholder" }, t("details.nsfwHidden")) : thumb(name, i),
    );
    const media = h("div", { class: "gallery-media" }, open);
    if (blurred(name) || hidden) {
      media.append(
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small nsfw-show",
            "aria-label": t("details.nsfwShowImage", { n: i + 1 }),
            onclick: () => {
              reveal(name);
              open.focus();
            },
          },
          t("details.nsfwShow"),
        ),
      );
    }
    const tools = imageTools(i, names.length, { makeCover, move, remove: deleteButton(sha, name, i, onImages) });
    const figure = h(
      "figure",
      {
        class: ["gallery-item", blurred(name) ? "nsfw-blurred" : "", hidden ? "nsfw-hidden" : ""],
        role: "listitem",
        dataset: { name },
      },
      media,
      tools,
    );
    draggableImage(figure, i, moveTo);
    items.push(figure);
    return figure;
  }

  const grid = names.length
    ? h(
        "div",
        { class: "gallery", role: "list", "aria-label": t("details.images") },
        names.map((name, i) => item(name, i)),
      )
    : h("p", { class: "muted gallery-empty" }, t("details.noImages"));

  focusMoved(items, names, focus);

  const { drop, fileInput, status } = uploader(sha, onImages);
  const section = h(
    "section",
    { class: "details-gallery", "aria-label": t("details.images") },
    grid,
    drop,
    fileInput,
    status,
  );
  return {
    el: section,
    /** Show a message in the status line (kept across a re-render by the panel). */
    setStatus(message) {
      status.textContent = message || "";
    },
  };
}
