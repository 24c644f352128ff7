//! The HTTP calls tests make, as shops, admins and users make them.
use crate::TestApp;
use reqwest::{Response, StatusCode};
use schemas::UserId;
use serde_json::{json, Value};

impl TestApp {
    pub async fn post(&self, path: &str, bearer: &str, body: &Value) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str, bearer: &str) -> Value {
        let r = self.get(path, Some(bearer)).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn try_signup(&self, referrer: Option<UserId>) -> Response {
        self.post(
            "/v1/users",
            &self.shop_key.clone(),
            &json!({ "referrer_id": referrer }),
        )
        .await
    }

    pub async fn signup(&self, referrer: Option<UserId>) -> UserId {
        self.signup_by(&self.shop_key, referrer).await
    }

    /// A signup by another credential (a second shop's key, an admin token).
    pub async fn signup_by(&self, bearer: &str, referrer: Option<UserId>) -> UserId {
        let r = self
            .post("/v1/users", bearer, &json!({ "referrer_id": referrer }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().parse().unwrap()
    }

    /// Moves `user` under `referrer` (or to the top) as an admin does.
    pub async fn move_user(&self, user: UserId, referrer: Option<UserId>) -> Response {
        self.http
            .put(format!("{}/v1/admin/users/{user}/referrer", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({ "referrer_id": referrer }))
            .send()
            .await
            .unwrap()
    }

    /// A refers B, B refers C.
    pub async fn chain3(&self) -> (UserId, UserId, UserId) {
        let a = self.signup(None).await;
        let b = self.signup(Some(a)).await;
        let c = self.signup(Some(b)).await;
        (a, b, c)
    }

    pub async fn purchase(
        &self,
        order: &str,
        user: UserId,
        amount: &str,
        profit: Option<&str>,
    ) -> Response {
        let mut body = json!({ "order_id": order, "user_id": user, "amount": amount });
        if let Some(p) = profit {
            body["profit"] = json!(p);
        }
        self.post("/v1/purchases", &self.shop_key.clone(), &body)
            .await
    }

    pub async fn refund(&self, refund: &str, order: &str, amount: &str) -> Response {
        let body = json!({ "refund_id": refund, "order_id": order, "amount": amount });
        self.post("/v1/refunds", &self.shop_key.clone(), &body)
            .await
    }
}
