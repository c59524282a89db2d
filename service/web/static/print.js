// The roll call's print button (the page's only script).
"use strict";
document.getElementById("print").addEventListener("click", () => window.print());
