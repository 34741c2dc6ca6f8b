// Progressive enhancement for the gateway's own pages: everything works without it.
// Ticking both CSR and Administrator shows the warning as it is chosen; the server warns too.
document.querySelectorAll("[data-csr-admin-warning]").forEach(function (box) {
  var warning = box.querySelector("#csr-admin-warning");
  function update() {
    var csr = box.querySelector('input[value="CSR"]');
    var admin = box.querySelector('input[value="Administrator"]');
    warning.hidden = !(csr && admin && csr.checked && admin.checked);
  }
  box.addEventListener("change", update);
  update();
});
// An approved request's page starts the impersonation by itself (the button stays for no-JS).
document.querySelectorAll("form[data-autostart]").forEach(function (form) {
  form.submit();
});
