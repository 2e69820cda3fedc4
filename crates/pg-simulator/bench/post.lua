-- wrk script: every request is a valid canonical payment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-USER-ID"] = "135135"
wrk.body = '{"orderId":"000123","cardType":"SAMSUNG","cardNo":"1234-5678-9012-3456","amount":5000,"callbackUrl":"http://localhost:8080/api/v1/payments/callback"}'
