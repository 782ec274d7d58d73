// The actions of a library card, in a small menu (WAI-ARIA menu button pattern): copy
// "<lora:NAME:WEIGHT>", copy the trigger words, send to the workflow (when ComfyUI serves
// the page), open the Civitai page, fetch from Civitai, delete (with a confirmation that
// says whether the file goes too). Also the delete confirmation the bulk actions reuse.

import { bumpImageVersion, del, post } from "../api.js";
import { sendToWorkflow } from "../comfy-link.js";
import { copyText, h } from "../../comfy/shared/dom.js";
import { loraString } from "../../comfy/shared/lora.js";
import { t } from "../i18n.js";
import { displayName } from "./model-card.js";
import { toast, toastError } from "./toast.js";

const URL_RE = /^https?:\/\/\S+$/i;

/** Put the model into the workflow of the ComfyUI tab focused last (comfy-link.js). */
async function sendModel(model) {
  const name = displayName(model);
  const result = await sendToWorkflow({ sha256: model.sha256, name, type: model.type, path: model.path });
  if (result === "sent") toast(t("library.sent", { name }), "success");
  else if (result === "failed") toast(t("library.sendFailed", { name }), "error");
  else toast(t("library.noComfy", { name }), "error");
}

async function copy(value) {
  const ok = await copyText(value);
  toast(ok ? t("library.copied", { value }) : t("library.copyFailed"), ok ? "success" : "error");
}

// ------------------------------------------------------------------ confirm delete
/**
 * Ask before deleting `count` models (`name`: the one model's name). Resolves to null
 * (cancelled) or {deleteFile: bool}; the "also delete the file" checkbox starts off.
 */
export function confirmDelete({ count = 1, name = "" } = {}) {
  return new Promise((resolve) => {
    const fileBox = h("input", { type: "checkbox", id: "delete-file", class: "checkbox" });
    const note = h("p", { class: "muted small", id: "delete-note" });
    const updateNote = () => {
      note.textContent = fileBox.checked
        ? t("library.deleteNoteFile", { n: count })
        : t("library.deleteNoteKeep", { n: count });
    };
    fileBox.addEventListener("change", updateNote);
    updateNote();
    let answer = null;
    const confirm = h("button", { type: "submit", class: "btn btn-danger", value: "delete" }, t("common.delete"));
    const dialog = h(
      "dialog",
      {
        class: "confirm-dialog",
        role: "alertdialog",
        "aria-labelledby": "delete-title",
        "aria-describedby": "delete-note",
      },
      h(
        "form",
        {
          method: "dialog",
          onsubmit: (event) => {
            if (event.submitter === confirm) answer = { deleteFile: fileBox.checked };
          },
        },
        h(
          "h2",
          { id: "delete-title" },
          count === 1 && name ? t("library.deleteOne", { name }) : t("library.deleteMany", { n: count }),
        ),
        h("label", { class: "inline-label", for: "delete-file" }, fileBox, t("library.deleteFile", { n: count })),
        note,
        h(
          "div",
          { class: "form-actions" },
          h("button", { type: "submit", class: "btn", value: "cancel" }, t("common.cancel")),
          confirm,
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    fileBox.focus();
  });
}

// ------------------------------------------------------------------ the menu
let openMenu = null;

function closeMenu(focusButton = true) {
  if (!openMenu) return;
  const { menu, button, cleanup } = openMenu;
  openMenu = null;
  cleanup();
  menu.remove();
  button.setAttribute("aria-expanded", "false");
  if (focusButton && button.isConnected) button.focus();
}

function menuItem(label, action, { href = null, danger = false } = {}) {
  const attrs = { role: "menuitem", tabindex: "-1", class: ["menu-item", danger ? "danger" : ""] };
  if (href) {
    return h("a", { ...attrs, href, target: "_blank", rel: "noopener noreferrer", onclick: () => closeMenu() }, label);
  }
  return h(
    "button",
    {
      ...attrs,
      type: "button",
      onclick: () => {
        closeMenu();
        action();
      },
    },
    label,
  );
}

/** The menu's items for one model; `hooks`: {comfy (ComfyUI serves this page: "Send to
 * workflow"), onChanged(sha), onDeleted(sha)}. */
function items(model, { comfy = false, onChanged, onDeleted }) {
  const list = [];
  if (model.type === "loras") {
    list.push(menuItem(t("library.copyLora"), () => copy(loraString(model, model.preferred_weight))));
  }
  const words = model.trigger_words || [];
  if (words.length) list.push(menuItem(t("library.copyTriggers"), () => copy(words.join(", "))));
  if (comfy) list.push(menuItem(t("library.sendToWorkflow"), () => sendModel(model)));
  if (model.civitai_url && URL_RE.test(model.civitai_url)) {
    list.push(menuItem(t("library.openCivitai"), null, { href: model.civitai_url }));
  }
  list.push(
    menuItem(t("library.fetchCivitai"), async () => {
      toast(t("library.civitaiAsking", { name: displayName(model) }), "info");
      try {
        const answer = await post(`models/${model.sha256}/civitai`, {});
        const found = answer.civitai && answer.civitai.status === "found";
        if (found) bumpImageVersion(model.sha256);
        toast(
          t(found ? "library.civitaiFound" : "library.civitaiNotFound", { name: displayName(model) }),
          found ? "success" : "info",
        );
        await onChanged(model.sha256);
      } catch (err) {
        toastError(err, t("library.civitaiFailed"));
      }
    }),
  );
  list.push(
    menuItem(
      t("library.deleteAction"),
      async () => {
        const choice = await confirmDelete({ count: 1, name: displayName(model) });
        if (!choice) return;
        try {
          await del(`models/${model.sha256}`, choice.deleteFile ? { delete_file: "true" } : {});
          toast(
            t(choice.deleteFile ? "library.deletedWithFile" : "library.deleted", { name: displayName(model) }),
            "success",
          );
          onDeleted(model.sha256);
        } catch (err) {
          toastError(err, t("library.deleteFailed"));
        }
      },
      { danger: true },
    ),
  );
  return list;
}

/** Open the actions menu of `model` under its card's `button`. */
export function showCardMenu(button, model, hooks) {
  const again = openMenu && openMenu.button === button;
  closeMenu(false);
  if (again) return;
  const menu = h(
    "div",
    { class: "menu", role: "menu", "aria-label": t("library.actionsFor", { name: displayName(model) }) },
    items(model, hooks),
  );
  document.body.append(menu);
  const entries = () => [...menu.querySelectorAll("[role=menuitem]")];
  const place = () => {
    const box = button.getBoundingClientRect();
    const width = menu.offsetWidth;
    const height = menu.offsetHeight;
    const left = Math.max(8, Math.min(box.right - width, window.innerWidth - width - 8));
    const below = box.bottom + 4;
    const top = below + height > window.innerHeight - 8 ? Math.max(8, box.top - height - 4) : below;
    menu.style.setProperty("left", `${left}px`);
    menu.style.setProperty("top", `${top}px`);
  };
  place();
  menu.addEventListener("keydown", (event) => {
    const all = entries();
    const index = all.indexOf(document.activeElement);
    let next = null;
    if (event.key === "ArrowDown") next = (index + 1) % all.length;
    else if (event.key === "ArrowUp") next = (index - 1 + all.length) % all.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = all.length - 1;
    else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeMenu();
      return;
    } else if (event.key === "Tab") {
      closeMenu(false);
      return;
    }
    if (next !== null) {
      event.preventDefault();
      all[next].focus();
    }
  });
  const outside = (event) => {
    if (!menu.contains(event.target) && event.target !== button) closeMenu(false);
  };
  const away = () => closeMenu(false);
  document.addEventListener("pointerdown", outside, true);
  window.addEventListener("resize", away);
  window.addEventListener("scroll", away, true);
  openMenu = {
    menu,
    button,
    cleanup() {
      document.removeEventListener("pointerdown", outside, true);
      window.removeEventListener("resize", away);
      window.removeEventListener("scroll", away, true);
    },
  };
  button.setAttribute("aria-expanded", "true");
  entries()[0].focus();
}
