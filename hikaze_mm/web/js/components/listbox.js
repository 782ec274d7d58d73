// The listbox of a WAI-ARIA combobox (an input whose options show in a list below it):
// which option is active, and closing the list. Options are the listbox's children, each
// with an id; the focus stays in the input (aria-activedescendant names the active one).

/** Mark option `index` active (-1: none) and keep it in view. */
export function highlightOption(input, listbox, index) {
  for (const [i, li] of [...listbox.children].entries()) {
    li.classList.toggle("active", i === index);
    li.setAttribute("aria-selected", String(i === index));
  }
  const option = index >= 0 ? listbox.children[index] : null;
  if (option) {
    input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  } else {
    input.removeAttribute("aria-activedescendant");
  }
}

/** Hide the list and say so on the input. */
export function closeListbox(input, listbox) {
  listbox.hidden = true;
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("aria-activedescendant");
}
