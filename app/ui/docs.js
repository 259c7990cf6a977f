// Swagger UI from local files (app/http/console.py); kept out of the HTML so the CSP needs no inline script.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#ui",
  deepLinking: true,
  // The default validator badge calls validator.swagger.io: nothing may leave the service.
  validatorUrl: null,
  // "Authorize" keeps the bearer token in this page's memory only, never in storage.
  persistAuthorization: false,
});
