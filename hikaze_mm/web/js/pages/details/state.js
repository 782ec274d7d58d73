// The details panel's state (the record shown, edit mode, the form's fields) and what a
// save sends: the PATCH body of the changes. No DOM is built here.

export const SHA_RE = /^[0-9a-f]{64}$/;

/** The panel's state, while no model is shown. */
export function createDetailsState({ onSaved, onClosed }) {
  return {
    onSaved,
    onClosed,
    current: null, // the record shown
    editing: false,
    editor: null,
    dirty: false,
    fields: {},
    revealed: new Set(), // NSFW images the user chose to see, while the panel is open
    galleryPart: null,
    made: null, // the "Made with this model" strip: {sha, el}
    afterDiscard: "close", // what "Discard changes" does: close the panel or leave Edit
  };
}

/** meta.community_links may be a list of strings/objects or one string: -> list of URLs. */
export function linksOf(meta) {
  const raw = meta && meta.community_links;
  if (!raw) return [];
  const items = Array.isArray(raw) ? raw : String(raw).split(/[\s,]+/);
  return items
    .map((item) => (item && typeof item === "object" ? item.url || item.href || "" : String(item || "")))
    .map((s) => s.trim())
    .filter(Boolean);
}

export function promptsOf(meta) {
  const prompts = (meta && meta.prompts) || {};
  if (typeof prompts === "string") return { positive: prompts, negative: "" };
  return { positive: String(prompts.positive || ""), negative: String(prompts.negative || "") };
}

/** The PATCH body: only what changed; null when the form is invalid. */
export function patchBody(ctx, record) {
  const name = ctx.fields.name.value.trim();
  if (!name) return null;
  const body = {};
  if (name !== (record.name || "")) body.name = name;
  const type = ctx.fields.type.value.trim();
  if (type && type !== (record.type || "")) body.type = type;
  const base = ctx.fields.base.value.trim();
  if (base !== (record.base || "")) body.base = base || null;
  const words = ctx.fields.triggerWords.value
    .split(/[,\n]/)
    .map((word) => word.trim())
    .filter(Boolean);
  if (words.join("\n") !== (record.trigger_words || []).join("\n")) body.trigger_words = words;
  const weightText = ctx.fields.weight.value.trim();
  const weight = weightText === "" ? null : Number(weightText);
  if (weight !== (record.preferred_weight ?? null)) body.preferred_weight = weight;

  const meta = record.meta || {};
  const metaChanges = {};
  const description = ctx.fields.description.value;
  if (description !== String(meta.description || "")) metaChanges.description = description;
  const prompts = promptsOf(meta);
  const positive = ctx.fields.positive.value;
  const negative = ctx.fields.negative.value;
  if (positive !== prompts.positive || negative !== prompts.negative) {
    const base = meta.prompts && typeof meta.prompts === "object" ? meta.prompts : {};
    metaChanges.prompts = { ...base, positive, negative };
  }
  const links = ctx.fields.links.value
    .split(/\s+/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (links.join("\n") !== linksOf(meta).join("\n")) metaChanges.community_links = links;
  if (Object.keys(metaChanges).length) body.meta_json = metaChanges;

  const before = (record.tags || [])
    .map((tag) => tag.name.toLowerCase())
    .sort()
    .join("\n");
  const after = ctx.editor.value
    .map((tag) => tag.name.toLowerCase())
    .sort()
    .join("\n");
  if (before !== after) body.tags = { set: ctx.editor.value.map((tag) => tag.name) };
  return body;
}

