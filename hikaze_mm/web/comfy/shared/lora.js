// The one "<lora:NAME:WEIGHT>" prompt tag, for the manager's card menu and the ComfyUI
// sidebar. NAME is the file's stem: A1111 and ComfyUI's prompt-syntax LoRA loaders look
// the LoRA up by its file name, so a LoRA renamed in the library (its display name) still
// copies the name they find. Pure: no DOM, no side effects.

import { formatWeight } from "./format.js";

/** The file name of a model without its extension ("/a/b/x.v2.safetensors" -> "x.v2"). */
export function fileStem(path) {
  const base = String(path || "").split(/[\\/]/).pop();
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

/**
 * "<lora:NAME:WEIGHT>" for a model ({path, name}): NAME its file's stem (its name when
 * the path is unknown), WEIGHT the given one (the preferred weight; 1 when there is none).
 */
export function loraString(model, weight = 1) {
  const name = fileStem(model && model.path) || String((model && model.name) || "");
  return `<lora:${name}:${formatWeight(weight ?? 1)}>`;
}
