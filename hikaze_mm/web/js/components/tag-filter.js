// The Library's tag filter: a combobox to find a tag by typing (arrow keys move in the
// list, Enter requires the tag, Shift+Enter excludes it, Escape closes), and the chosen
// tags as chips: a click on a chip switches it between required and excluded, Delete or
// Backspace on it (or its × button) removes it.

import { h, replaceChildren, safeColor } from "../../comfy/shared/dom.js";
import { formatNumber } from "../format.js";
import { t } from "../i18n.js";
import { closeListbox, highlightOption } from "./listbox.js";

const MAX_OPTIONS = 50;

function chipLabel(name, state) {
  return t(`library.tagState.${state}`, { name });
}

/** The filter's elements: the combobox input, its listbox, the chips. */
function filterElements() {
  const input = h("input", {
    type: "text",
    id: "tag-filter-input",
    class: "input tag-filter-input",
    role: "combobox",
    autocomplete: "off",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": "tag-filter-options",
    "aria-describedby": "tag-filter-hint",
    placeholder: t("library.filterTags"),
  });
  const listbox = h("ul", {
    id: "tag-filter-options",
    class: "suggestions",
    role: "listbox",
    "aria-label": t("library.tagOptions"),
    hidden: true,
  });
  const chips = h("div", { class: "chips tag-filter-chips", role: "group", "aria-label": t("library.tagFilters") });
  const el = h(
    "div",
    { class: "tag-filter" },
    h("label", { class: "filter-label", for: "tag-filter-input" }, t("library.tagsLabel")),
    h("div", { class: "combo" }, input, listbox),
    h("p", { id: "tag-filter-hint", class: "visually-hidden" }, t("library.tagHint")),
    chips,
  );
  return { input, listbox, chips, el };
}

/** A chosen tag's chip: a click switches required/excluded, Delete or × removes it. */
function filterChip(name, state, tag, actions) {
  return h(
    "span",
    {
      class: ["chip", `chip-${state}`],
      style: { "--tag-color": safeColor(tag && tag.color) },
      dataset: { tag: name, state },
    },
    h(
      "button",
      {
        type: "button",
        class: "chip-toggle",
        "aria-label": chipLabel(name, state),
        title: t("library.chipToggle"),
        onclick: () => actions.toggle(name),
        onkeydown: (event) => {
          if (event.key === "Delete" || event.key === "Backspace") {
            event.preventDefault();
            actions.remove(name);
          }
        },
      },
      h("span", { class: "chip-mark", "aria-hidden": "true" }, state === "include" ? "+" : "−"),
      h("span", { class: "chip-name" }, name),
    ),
    h(
      "button",
      {
        type: "button",
        class: "chip-remove",
        tabindex: "-1",
        "aria-label": t("library.removeTagFilter", { name }),
        onclick: () => actions.remove(name),
      },
      "×",
    ),
  );
}

/**
 * states: a Map tag name -> "include" | "exclude" (shared with the page, changed here);
 * onChange(): the filter changed. Returns {el, setTags(tags), render()}.
 */
export function createTagFilter({ states, onChange }) {
  let tags = [];
  let options = [];
  let active = -1;

  const { input, listbox, chips, el } = filterElements();

  function matches() {
    const text = input.value.trim().toLowerCase();
    return tags
      .filter((tag) => !states.has(tag.name) && (!text || tag.name.toLowerCase().includes(text)))
      .sort((a, b) => {
        // Names starting with the text first, then the most used.
        const pa = text && a.name.toLowerCase().startsWith(text) ? 0 : 1;
        const pb = text && b.name.toLowerCase().startsWith(text) ? 0 : 1;
        return pa - pb || (b.model_count || 0) - (a.model_count || 0) || a.name.localeCompare(b.name);
      })
      .slice(0, MAX_OPTIONS);
  }

  function closeList() {
    closeListbox(input, listbox);
    active = -1;
  }

  function setActive(index) {
    active = index;
    highlightOption(input, listbox, index);
  }

  function openList() {
    options = matches();
    replaceChildren(
      listbox,
      options.length
        ? options.map((tag, i) =>
            h(
              "li",
              {
                id: `tag-filter-option-${i}`,
                role: "option",
                "aria-selected": "false",
                dataset: { tag: tag.name },
                onpointerdown: (event) => event.preventDefault(), // keep the focus in the input
                onclick: () => choose(tag.name, "include"),
              },
              h("span", { class: "tag-dot", style: { background: safeColor(tag.color) }, "aria-hidden": "true" }),
              h("span", { class: "option-name" }, tag.name),
              tag.model_count ? h("span", { class: "count" }, formatNumber(tag.model_count)) : null,
            ),
          )
        : h("li", { class: "muted option-empty", role: "option", "aria-disabled": "true" }, t("library.noTagMatch")),
    );
    listbox.hidden = false;
    input.setAttribute("aria-expanded", "true");
    setActive(options.length && input.value.trim() ? 0 : -1);
  }

  function choose(name, state) {
    states.set(name, state);
    input.value = "";
    closeList();
    render();
    onChange();
  }

  input.addEventListener("input", openList);
  input.addEventListener("focus", () => {
    if (input.value.trim()) openList();
  });
  input.addEventListener("blur", () => closeList());
  input.addEventListener("keydown", (event) => {
    const open = !listbox.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) openList();
      if (!options.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive((active + step + options.length) % options.length);
    } else if (event.key === "Enter") {
      const tag = open && active >= 0 ? options[active] : null;
      if (!tag) return;
      event.preventDefault();
      choose(tag.name, event.shiftKey || event.altKey ? "exclude" : "include");
    } else if (event.key === "Escape") {
      if (open) {
        event.preventDefault();
        closeList();
      } else if (input.value) {
        event.preventDefault();
        input.value = "";
      }
    }
  });

  function render() {
    replaceChildren(
      chips,
      [...states].map(([name, state]) => {
        const tag = tags.find((item) => item.name === name);
        return filterChip(name, state, tag, { toggle, remove });
      }),
    );
  }

  function toggle(name) {
    states.set(name, states.get(name) === "include" ? "exclude" : "include");
    render();
    focusChip(name, ".chip-toggle");
    onChange();
  }

  function focusChip(name, selector) {
    const chip = chips.querySelector(`[data-tag="${CSS.escape(name)}"] ${selector}`);
    if (chip) chip.focus();
    else input.focus();
  }

  function remove(name) {
    const names = [...states.keys()];
    const index = names.indexOf(name);
    states.delete(name);
    render();
    const next = names[index + 1] || names[index - 1];
    if (next && states.has(next)) focusChip(next, ".chip-toggle");
    else input.focus();
    onChange();
  }

  return {
    el,
    /** The tag vocabulary ({name, color, model_count}) to search in. */
    setTags(list) {
      tags = list;
      render();
    },
    render,
  };
}
