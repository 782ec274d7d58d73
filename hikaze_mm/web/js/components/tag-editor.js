// Tag editor: the model's tags as removable chips, and an input with autocomplete over the
// tag vocabulary (WAI-ARIA combobox: arrows, Enter, Escape). A name that is no tag yet is
// created (with a color from the palette) and added in one step: Enter, or one click on
// "Create tag".

import { h, replaceChildren } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";
import { closeListbox, highlightOption } from "./listbox.js";
import { createTag, loadTags } from "../tags.js";
import { describeError } from "./toast.js";
import { tagChip } from "./widgets.js";

const PALETTE = ["#2f81f7", "#3fb950", "#d29922", "#db61a2", "#a371f7", "#f85149", "#39c5cf", "#e3b341"];
const MAX_SUGGESTIONS = 8;
let editorCount = 0;

/** A new tag's color: picked from the palette by its name (the same name, the same color). */
function tagColor(name) {
  let sum = 0;
  for (const ch of name.toLowerCase()) sum = (sum * 31 + ch.codePointAt(0)) % 1000003;
  return PALETTE[sum % PALETTE.length];
}

/** The editor's elements: chips, the combobox input and its listbox, the error line. */
function editorElements(listId, label) {
  const chips = h("div", { class: "tag-list editable", "aria-live": "polite" });
  const input = h("input", {
    type: "text",
    class: "input",
    role: "combobox",
    "aria-label": t("tags.addLabel"),
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
    placeholder: t("tags.addPlaceholder"),
    autocomplete: "off",
    maxlength: "64",
  });
  const listbox = h("ul", {
    class: "suggestions",
    role: "listbox",
    id: listId,
    "aria-label": t("tags.suggestions"),
    hidden: true,
  });
  const error = h("p", { class: "error-text tag-error", role: "alert" });
  const root = h(
    "div",
    { class: "tag-editor", role: "group", "aria-label": label },
    chips,
    h("div", { class: "combo" }, input, listbox),
    error,
  );
  return { chips, input, listbox, error, root };
}

/** The known tags matching `text` (not already `selected`), and whether it names one. */
async function suggestionsFor(text, selected) {
  let tags = [];
  try {
    tags = await loadTags();
  } catch {
    tags = [];
  }
  const lower = text.toLowerCase();
  const taken = new Set(selected.map((s) => s.name.toLowerCase()));
  const matches = tags
    .filter((tag) => tag.name.toLowerCase().includes(lower) && !taken.has(tag.name.toLowerCase()))
    .sort(
      (a, b) =>
        Number(!a.name.toLowerCase().startsWith(lower)) - Number(!b.name.toLowerCase().startsWith(lower)),
    )
    .slice(0, MAX_SUGGESTIONS);
  const found = matches.map((tag) => ({ kind: "tag", tag }));
  const exact = tags.find((tag) => tag.name.toLowerCase() === lower);
  if (!exact && !taken.has(lower)) found.push({ kind: "new", name: text });
  return { found, exact, taken: taken.has(lower) };
}


/** The listbox's options: known tags as chips, a new name as "Create tag". */
function suggestionItems(options, listId, choose) {
  return options.map((option, i) =>
      h(
        "li",
        {
          id: `${listId}-${i}`,
          role: "option",
          class: option.kind === "new" ? "option-new" : "",
          "aria-selected": "false",
          onmousedown: (event) => event.preventDefault(), // keep focus in the input
          onclick: () => choose(i),
        },
        option.kind === "tag" ? tagChip(option.tag) : t("tagEditor.create", { name: option.name }),
      ),
    );
}

export function tagEditor(initial = [], { label = t("details.tags"), onChange = () => {} } = {}) {
  editorCount += 1;
  const listId = `tag-suggest-${editorCount}`;
  let selected = [...initial];
  let options = [];
  let active = -1;
  let shownFor = null; // the text the listed options were computed for

  const { chips, input, listbox, error, root } = editorElements(listId, label);

  function renderChips() {
    replaceChildren(
      chips,
      selected.length
        ? selected.map((tag) => tagChip(tag, { onRemove: remove }))
        : h("span", { class: "muted" }, t("tags.none")),
    );
  }

  function remove(tag) {
    selected = selected.filter((s) => s.name.toLowerCase() !== tag.name.toLowerCase());
    renderChips();
    onChange(selected);
    input.focus();
  }

  function add(tag) {
    if (!selected.some((s) => s.name.toLowerCase() === tag.name.toLowerCase())) {
      selected = [...selected, tag];
      renderChips();
      onChange(selected);
    }
    input.value = "";
    closeList();
    input.focus();
  }

  function closeList() {
    closeListbox(input, listbox);
    replaceChildren(listbox);
    options = [];
    shownFor = null;
    active = -1;
  }

  function setActive(index) {
    active = index;
    highlightOption(input, listbox, index);
  }

  async function refreshSuggestions() {
    const text = input.value.trim();
    if (!text) {
      closeList();
      return;
    }
    const { found } = await suggestionsFor(text, selected);
    if (input.value.trim() !== text) return; // typed on meanwhile
    options = found;
    shownFor = text;
    replaceChildren(listbox, suggestionItems(options, listId, choose));
    listbox.hidden = options.length === 0;
    input.setAttribute("aria-expanded", String(!listbox.hidden));
    setActive(options.length ? 0 : -1);
  }

  function choose(index) {
    const option = options[index];
    if (!option) return;
    if (option.kind === "tag") add(option.tag);
    else createAndAdd(option.name);
  }

  /** Enter with a typed name and no (current) list: the tag of that name, or a new one. */
  async function commitTyped(text) {
    const { exact, taken } = await suggestionsFor(text, selected);
    if (input.value.trim() !== text) return;
    if (taken) {
      input.value = "";
      closeList();
    } else if (exact) add(exact);
    else createAndAdd(text);
  }

  let creating = false;

  async function createAndAdd(name) {
    if (creating) return;
    creating = true;
    error.textContent = "";
    closeList();
    try {
      const tag = await createTag(name, tagColor(name));
      add(tag);
    } catch (err) {
      error.textContent = describeError(err);
    } finally {
      creating = false;
    }
  }

  input.addEventListener("input", () => {
    error.textContent = "";
    refreshSuggestions();
  });
  input.addEventListener("blur", () => setTimeout(closeList, 150));
  input.addEventListener("keydown", (event) => {
    const open = !listbox.hidden;
    const text = input.value.trim();
    if (event.key === "ArrowDown" && open) {
      event.preventDefault();
      setActive((active + 1) % options.length);
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      setActive((active - 1 + options.length) % options.length);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (open && active >= 0 && shownFor === text) choose(active);
      else if (text) commitTyped(text);
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      event.stopPropagation();
      closeList();
    } else if (event.key === "Backspace" && !input.value && selected.length) {
      remove(selected[selected.length - 1]);
    }
  });

  renderChips();
  return {
    el: root,
    get value() {
      return [...selected];
    },
    /** True while a popup of the editor is open (Escape closes it, not the dialog). */
    get busy() {
      return !listbox.hidden;
    },
  };
}
