/* New-study form: only the task settings of the chosen protocol are shown. A section that another mode
   uses (data-mode) is hidden and its fields disabled, so they are neither seen nor sent; the server
   ignores them anyway (hype.settings_form.applies), so the form works the same without JavaScript,
   where both sections show and each says which studies use it. */
"use strict";

(function () {
  const radios = Array.from(document.querySelectorAll("input[type=radio][name=mode]"));
  const sections = Array.from(document.querySelectorAll("fieldset[data-mode]"));
  if (!radios.length || !sections.length) return;

  function show() {
    const chosen = radios.find((r) => r.checked);
    const mode = chosen ? chosen.value : null;
    for (const section of sections) {
      const used = section.dataset.mode === mode;
      section.hidden = !used;
      section.disabled = !used;
    }
  }

  for (const radio of radios) radio.addEventListener("change", show);
  show();
})();
