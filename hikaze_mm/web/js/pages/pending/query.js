// Loading and changing the pending items: a page of them (looked at again while some are
// being hashed), imports of the selection, conflicts opened and resolved.

import { bumpImageVersion, get, post } from "../../api.js";
import { replaceChildren } from "../../../comfy/shared/dom.js";
import { t } from "../../i18n.js";
import { describeError, toast, toastError } from "../../components/toast.js";
import { loadFailed } from "../../components/widgets.js";
import { renderConflicts } from "./conflicts.js";
import { scrollBelowHeader, shortenHashes } from "./helpers.js";
import { render, renderSelection } from "./list.js";
import { PAGE_SIZE } from "./state.js";

export async function load(ctx) {
  try {
    const data = await get("migration/pending", {
      status: ctx.state.status,
      offset: ctx.state.offset,
      limit: PAGE_SIZE,
    });
    ctx.state.items = data.items;
    ctx.state.total = data.total;
    if (!ctx.state.items.length && ctx.state.offset > 0 && ctx.state.total > 0) {
      ctx.state.offset = Math.max(0, ctx.state.offset - PAGE_SIZE);
      return load(ctx);
    }
    render(ctx);
    // Items being hashed (by the worker or another client) change soon: look again.
    clearTimeout(ctx.refreshTimer);
    if (!ctx.stopped && ctx.state.items.some((item) => item.status === "hashing"))
      ctx.refreshTimer = setTimeout(() => load(ctx), 2000);
  } catch (err) {
    ctx.state.items = [];
    replaceChildren(ctx.tbody);
    replaceChildren(ctx.cards);
    replaceChildren(ctx.message, loadFailed(t("pending.loadFailed", { error: describeError(err) }), () => load(ctx)));
  }
  return undefined;
}

export function page(ctx, delta) {
  ctx.state.offset = Math.max(0, ctx.state.offset + delta * PAGE_SIZE);
  load(ctx);
}

export async function importIds(ctx, ids) {
  if (!ids.length) return;
  const strategy = ctx.strategySelect.value || null;
  ctx.importButton.disabled = true;
  ctx.importButton.textContent = t("pending.importing", { n: ids.length });
  let results;
  try {
    results = (await post("migration/import_models", { ids, conf_strategy: strategy })).results;
  } catch (err) {
    toastError(err, t("pending.importFailed"));
    renderSelection(ctx);
    return;
  }
  let imported = 0;
  const failures = [];
  // Each result is a success, a conflict (with both records) or another error.
  for (const result of results) {
    if (result.status === "success") {
      imported += 1;
      ctx.state.selected.delete(result.id);
    } else if (result.existing && result.pending) {
      ctx.conflicts.set(result.id, { existing: result.existing, pending: result.pending, choice: "merge" });
      ctx.state.selected.delete(result.id);
    } else {
      failures.push(`#${result.id}: ${shortenHashes(describeError(result))}`);
    }
  }
  if (imported) toast(t("pending.imported", { n: imported }), "success");
  for (const failure of failures) toast(failure, "error");
  const found = results.some((result) => result.existing && result.pending);
  renderConflicts(ctx);
  await load(ctx);
  ctx.refreshCounts();
  if (found) scrollBelowHeader(ctx.conflictSection);
}

/** Show a conflict known from the list (status "conflict"): fetch both records. */
export async function openConflict(ctx, id) {
  try {
    const pending = await get(`migration/pending/${id}`);
    if (!pending.sha256) throw new Error(t("pending.noHashYet"));
    const existing = await get(`models/${pending.sha256}`);
    ctx.conflicts.set(id, { existing, pending, choice: "merge" });
    renderConflicts(ctx);
    const el = ctx.conflictSection.querySelector(`[data-conflict="${id}"]`);
    if (el) scrollBelowHeader(el);
  } catch (err) {
    toastError(err, t("pending.loadConflictFailed"));
  }
}

export function dismiss(ctx, id) {
  ctx.conflicts.delete(id);
  renderConflicts(ctx);
}

export async function resolveOne(ctx, id, button) {
  const entry = ctx.conflicts.get(id);
  if (!entry) return false;
  if (button) button.disabled = true;
  try {
    const result = await post("migration/import_a_model", { id, conf_strategy: entry.choice });
    if (result && result.sha256) bumpImageVersion(result.sha256); // override replaces seq 0
    ctx.conflicts.delete(id);
    toast(
      t("pending.resolved", {
        id,
        action: t(`pending.action.${result.action_taken}`, { _: result.action_taken }),
      }),
      "success",
    );
    return true;
  } catch (err) {
    if (button) button.disabled = false;
    toastError(err, t("pending.resolveFailed", { id }));
    return false;
  } finally {
    if (button) {
      renderConflicts(ctx);
      await load(ctx);
      ctx.refreshCounts();
    }
  }
}

export async function resolveAll(ctx, button) {
  button.disabled = true;
  for (const id of [...ctx.conflicts.keys()]) await resolveOne(ctx, id, null);
  renderConflicts(ctx);
  await load(ctx);
  ctx.refreshCounts();
}
