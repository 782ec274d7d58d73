// The details panel's edit form (name, type, base, tags, trigger words, weight,
// description, prompts, links) and its Save bar; a save PATCHes the changes only.

import { getFacet, patch } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { t } from "../../i18n.js";
import { invalidateTags } from "../../tags.js";
import { tagEditor } from "../../components/tag-editor.js";
import { describeError, toast, toastError } from "../../components/toast.js";
import { linksOf, patchBody, promptsOf } from "./state.js";

function labelled(id, label, control) {
  control.id = id;
  return h("div", { class: "form-row" }, h("label", { for: id }, label), control);
}

/** The edit form and its Save bar (outside the form, sticky at the panel's bottom). */
export function form(ctx, record) {
  const meta = record.meta || {};
  const prompts = promptsOf(meta);
  ctx.fields = {
    name: h("input", {
      type: "text",
      class: "input",
      value: record.name || "",
      maxlength: "255",
      required: true,
    }),
    type: h("input", {
      type: "text",
      class: "input",
      value: record.type || "",
      list: "details-types",
      maxlength: "64",
    }),
    base: h("input", {
      type: "text",
      class: "input",
      value: record.base || "",
      list: "details-bases",
      maxlength: "64",
    }),
    triggerWords: h("textarea", {
      class: "input",
      rows: "2",
      placeholder: t("details.triggerWordsPlaceholder"),
    }),
    weight: h("input", {
      type: "number",
      class: "input",
      min: "-10",
      max: "10",
      step: "0.05",
      value: record.preferred_weight ?? "",
      placeholder: "1",
    }),
    description: h("textarea", { class: "input", rows: "4" }),
    positive: h("textarea", { class: "input", rows: "3" }),
    negative: h("textarea", { class: "input", rows: "3" }),
    links: h("textarea", { class: "input", rows: "2", placeholder: t("details.linksPlaceholder") }),
  };
  ctx.fields.triggerWords.value = (record.trigger_words || []).join(", ");
  ctx.fields.description.value = String(meta.description || "");
  ctx.fields.positive.value = prompts.positive;
  ctx.fields.negative.value = prompts.negative;
  ctx.fields.links.value = linksOf(meta).join("\n");
  ctx.editor = tagEditor(record.tags || [], { onChange: () => (ctx.dirty = true) });
  const errorBox = h("div", { class: "form-error", role: "alert" });
  const saveButton = h(
    "button",
    { type: "submit", class: "btn btn-primary", form: "details-form" },
    t("common.save"),
  );
  const typeList = h("datalist", { id: "details-types" });
  const baseList = h("datalist", { id: "details-bases" });
  fillDatalists(typeList, baseList);

  const formEl = h(
    "form",
    { class: "details-form", id: "details-form", novalidate: true, "aria-label": t("details.editForm") },
    labelled("details-name", t("details.name"), ctx.fields.name),
    h(
      "div",
      { class: "form-grid" },
      labelled("details-type", t("details.type"), ctx.fields.type),
      labelled("details-base", t("details.base"), ctx.fields.base),
    ),
    h("div", { class: "form-row" }, h("span", { class: "label" }, t("details.tags")), ctx.editor.el),
    h(
      "div",
      { class: "form-grid" },
      labelled("details-trigger-words", t("details.triggerWords"), ctx.fields.triggerWords),
      labelled("details-weight", t("details.preferredWeight"), ctx.fields.weight),
    ),
    labelled("details-description", t("details.description"), ctx.fields.description),
    labelled("details-positive", t("details.positive"), ctx.fields.positive),
    labelled("details-negative", t("details.negative"), ctx.fields.negative),
    labelled("details-links", t("details.links"), ctx.fields.links),
    typeList,
    baseList,
  );
  const bar = h(
    "div",
    { class: "form-actions details-savebar", role: "group", "aria-label": t("details.saveBar") },
    errorBox,
    saveButton,
    h("button", { type: "button", class: "btn", onclick: () => ctx.leaveEdit() }, t("common.cancel")),
  );
  formEl.addEventListener("input", () => {
    ctx.dirty = true;
  });
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.textContent = "";
    if (!ctx.fields.weight.checkValidity()) {
      errorBox.textContent = t("details.weightRange");
      ctx.fields.weight.focus();
      return;
    }
    const body = patchBody(ctx, record);
    if (body === null) {
      errorBox.textContent = t("details.nameRequired");
      ctx.fields.name.focus();
      return;
    }
    if (!Object.keys(body).length) {
      ctx.dirty = false;
      ctx.leaveEdit(); // nothing changed: nothing to send
      return;
    }
    saveButton.disabled = true;
    saveButton.textContent = t("common.saving");
    try {
      // The answer is the updated full record, as GET models/<sha> gives it.
      const saved = await patch(`models/${record.sha256}`, body);
      ctx.dirty = false;
      invalidateTags();
      toast(t("details.saved"), "success");
      ctx.editing = false;
      ctx.render(saved);
      ctx.onSaved(ctx.current);
      const edit = ctx.dialog.querySelector(".details-edit");
      if (edit) edit.focus();
    } catch (err) {
      errorBox.textContent = describeError(err);
      toastError(err, t("details.saveFailed"));
    } finally {
      saveButton.disabled = false;
      saveButton.textContent = t("common.save");
    }
  });
  return { formEl, bar };
}

async function fillDatalists(typeList, baseList) {
  const [types, bases] = await Promise.allSettled([getFacet("type"), getFacet("base")]);
  for (const [list, result] of [
    [typeList, types],
    [baseList, bases],
  ]) {
    const values = result.status === "fulfilled" ? result.value : [];
    replaceChildren(list, values.map((item) => h("option", { value: item.value })));
  }
}

