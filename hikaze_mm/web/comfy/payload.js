// The Hikaze nodes and the `hikaze_payload` JSON each of them carries (see
// hikaze_mm/workflow/payload.py): single loaders {"sha256", "name", "ckpt_path"}, the LoRA loader
// {"version": 2, "loras": [{"name", "full_path", "strength_model", "strength_clip", "sha256",
// "enabled"}]}. Pure functions only (no DOM, no ComfyUI): this module has no side effects.

export const PAYLOAD = "hikaze_payload";
export const MAX_STRENGTH = 100;

/** Each Hikaze node: what it loads (library types, the first is the default filter). */
export const NODE_SPECS = {
  HikazeCheckpointLoader: { kind: "single", types: ["checkpoints"], noun: "checkpoint" },
  HikazeDiffusionModelLoader: {
    kind: "single",
    types: ["diffusion_models", "unet"],
    noun: "diffusion model",
  },
  HikazeVAELoader: { kind: "single", types: ["vae"], noun: "VAE" },
  HikazeLoraPowerLoader: { kind: "loras", types: ["loras"], noun: "LoRA" },
};

/** The node class that loads a model of this library type, or null. */
export function nodeTypeFor(modelType) {
  for (const [nodeType, spec] of Object.entries(NODE_SPECS)) {
    if (spec.types.includes(modelType)) return nodeType;
  }
  return null;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function text(value) {
  return typeof value === "string" && value ? value : null;
}

function sha(value) {
  return typeof value === "string" && /^[0-9a-fA-F]{64}$/.test(value) ? value.toLowerCase() : null;
}

/** Same file? Paths compared with forward slashes (payloads may come from Windows). */
export function samePath(a, b) {
  const norm = (p) => String(p || "").replace(/\\/g, "/");
  return norm(a) === norm(b);
}

/** A single loader's payload -> {sha256, name, path} | null (empty) | {error}. */
export function parseSingle(raw) {
  if (typeof raw !== "string" || !raw.trim()) return null;
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    return { error: "hikaze_payload is not valid JSON" };
  }
  if (!isObject(data)) return { error: "hikaze_payload must be a JSON object" };
  const ref = { sha256: sha(data.sha256), name: text(data.name), path: text(data.ckpt_path) };
  return ref.sha256 || ref.name || ref.path ? ref : null;
}

/** The payload of a single loader for a library model. */
export function singlePayload(model) {
  const data = { sha256: model.sha256, name: model.name };
  if (model.path) data.ckpt_path = model.path;
  return JSON.stringify(data);
}

function strength(value) {
  const n = Number(value);
  if (typeof value === "boolean" || !Number.isFinite(n)) return 1;
  return Math.max(-MAX_STRENGTH, Math.min(MAX_STRENGTH, n));
}

/**
 * The LoRA loader's payload -> {loras: [entry...]} | {error, loras: []}. Entries keep every
 * key they had (a newer writer's extras survive an edit); strengths default to 1.
 */
export function parseLoras(raw) {
  if (typeof raw !== "string" || !raw.trim()) return { loras: [] };
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    return { error: "hikaze_payload is not valid JSON", loras: [] };
  }
  if (!isObject(data) || !Array.isArray(data.loras ?? [])) {
    return { error: "hikaze_payload must be {version: 2, loras: [...]}", loras: [] };
  }
  const loras = (data.loras || []).filter(isObject).map((entry) => ({
    ...entry,
    strength_model: strength(entry.strength_model ?? 1),
    strength_clip: strength(entry.strength_clip ?? 1),
    enabled: entry.enabled !== false,
  }));
  return { loras };
}

/** The LoRA loader's payload text for these entries. */
export function lorasPayload(loras) {
  return JSON.stringify({ version: 2, loras });
}

/** A LoRA entry for a library model at weight w (both strengths). */
export function loraEntry(model, weight = 1) {
  const w = strength(weight);
  return {
    name: model.name,
    full_path: model.path || "",
    strength_model: w,
    strength_clip: w,
    sha256: model.sha256,
    enabled: true,
  };
}

/** A model's preferred LoRA weight (meta.preferred_weight), else 1. */
export function preferredWeight(model) {
  const value = model && isObject(model.meta) ? model.meta.preferred_weight : undefined;
  if (typeof value === "number" && Number.isFinite(value)) return strength(value);
  if (typeof value === "string" && value.trim() && Number.isFinite(Number(value))) {
    return strength(Number(value));
  }
  return 1;
}

/** Clamp a strength typed by the user (NaN -> null: keep the old value). */
export function parseStrength(value) {
  const n = Number(String(value).trim());
  return String(value).trim() !== "" && Number.isFinite(n) ? strength(n) : null;
}
