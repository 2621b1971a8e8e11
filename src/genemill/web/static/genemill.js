// Progressive enhancement only: every page works without this file.
// 1. <select data-autosubmit> submits its form on change (the <noscript> button does it otherwise).
// 2. Pages with <meta name="genemill-refresh"> reload themselves until the dataset is ready.
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
    target.form.submit();
  }
});
