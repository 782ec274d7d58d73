// What POST images/inspect found in an image, drawn for the Library's inspect dialog: its
// parameters (prompt, negative prompt, seed, steps, sampler, CFG, size) and each resource
// (role, name, hash, weight) with its model's small card (a click opens the model's
// details) or "not in the library".

import { get, imageUrl } from "../../api.js";
import { h } from "../../../comfy/shared/dom.js";
import { t } from "../../i18n.js";
import { isNsfw } from "../../components/gallery.js";
import { lazyThumb } from "../../components/lazyimg.js";
import { nsfwMode } from "../../components/nsfw.js";
import { fieldList } from "../../components/widgets.js";

const known = (value) => value !== null && value !== undefined && value !== "";

/** Multi-line text shown as written (line breaks kept), or null when empty. */
function text(value) {
  return known(value) && String(value).trim() ? h("span", { class: "pre-text" }, String(value)) : null;
}

/** The image's parameters as a description list. */
export function parametersList(params) {
  const p = params || {};
  const sampler = [p.sampler, p.schedule_type].filter(known).join(" · ");
  const size = p.width && p.height ? `${p.width}×${p.height}` : null;
  return fieldList(
    [
      [t("inspect.prompt"), text(p.prompt)],
      [t("inspect.negative"), text(p.negative_prompt)],
      [t("inspect.seed"), known(p.seed) ? String(p.seed) : null],
      [t("inspect.steps"), known(p.steps) ? String(p.steps) : null],
      [t("inspect.sampler"), sampler || null],
      [t("inspect.cfg"), known(p.cfg) ? String(p.cfg) : null],
      [t("inspect.size"), size],
    ],
    "fields inspect-params",
  );
}

/** The library's records of the matched models (for their covers): sha256 -> record. */
export async function modelRecords(resources) {
  const shas = [...new Set(resources.filter((r) => r.model).map((r) => r.model.sha256))];
  const records = await Promise.all(shas.map((sha) => get(`models/${sha}`).catch(() => null)));
  return new Map(shas.map((sha, i) => [sha, records[i]]));
}

/** A matched model's small card: cover, name and type; a click opens its details. */
function modelButton(model, record, onOpen) {
  const name = model.name || (record && record.name) || model.sha256;
  const cover = record && record.images && record.images[0];
  const hidden = record && isNsfw(record) && nsfwMode() !== "show";
  return h(
    "button",
    {
      type: "button",
      class: "inspect-model",
      title: model.path || name,
      dataset: { sha256: model.sha256 },
      onclick: () => onOpen(model.sha256),
    },
    lazyThumb(cover && !hidden ? imageUrl(cover, "low") : "", name, { cls: "thumb thumb-small inspect-thumb" }),
    h(
      "span",
      { class: "inspect-model-text" },
      h("span", { class: "inspect-model-name" }, name),
      h("span", { class: "badge badge-type" }, model.type || "other"),
      h("span", { class: "visually-hidden" }, t("inspect.openDetails")),
    ),
  );
}

/** One resource of the image: what the image says, then the library's model or "not in the library". */
function resourceItem(resource, records, onOpen) {
  const role = t(`inspect.role.${resource.role}`, { _: resource.role || "" });
  const hash = resource.hash || resource.sha256; // what the image names
  const model = resource.model;
  return h(
    "li",
    { class: ["inspect-resource", model ? "in-library" : "not-in-library"] },
    h(
      "div",
      { class: "inspect-resource-facts" },
      h("span", { class: "badge inspect-role" }, role),
      h("span", { class: "inspect-resource-name" }, resource.name || t("inspect.unnamed")),
      known(resource.weight) ? h("span", { class: "muted" }, t("inspect.weight", { weight: String(resource.weight) })) : null,
      hash ? h("code", { class: "hash inspect-hash", title: hash }, hash) : null,
    ),
    model
      ? modelButton(model, records.get(model.sha256), onOpen)
      : h("p", { class: "muted inspect-missing" }, t("inspect.notInLibrary")),
  );
}

/** The whole answer: parameters, then the resources (or why there are none). */
export function inspectResult(answer, records, onOpen) {
  const resources = answer.resources || [];
  return [
    h("h3", { class: "inspect-heading" }, t("inspect.parameters")),
    parametersList(answer.parameters),
    h("h3", { class: "inspect-heading" }, t("inspect.resources", { n: resources.length })),
    resources.length
      ? h(
          "ul",
          { class: "inspect-resources", "aria-label": t("inspect.resourcesLabel") },
          resources.map((resource) => resourceItem(resource, records, onOpen)),
        )
      : h("p", { class: "muted inspect-none" }, t("inspect.noResources")),
  ];
}
