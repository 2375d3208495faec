//! Amazon Resource Names, read in one place: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html>). Every ARN deckhand
//! takes apart (a name, an id, a type, a region or an account from it) goes through [`Arn`].
//!
//! A small type of its own rather than the `aws-arn` crate: deckhand only reads ARNs that AWS or a
//! script gave it, borrowing their parts, and needs the resource's type and path segments, which
//! that crate leaves to the caller as one string.

/// An ARN's parts, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: &'a str,
    /// The service namespace: `ecs`, `elasticloadbalancing`, `iam`, `logs`.
    pub service: &'a str,
    /// The region; empty for global services (IAM).
    pub region: &'a str,
    /// The account id; empty for some services, `aws` for AWS managed IAM policies.
    pub account: &'a str,
    /// Everything after the account: `targetgroup/web/73e2d6bc24d8a067`, `log-group:/ecs/web:*`.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// The parts of `text`, or `None` when it is not an ARN (fewer than six `:`-separated fields,
    /// or no service or resource).
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let mut parts = text.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        (!service.is_empty() && !resource.is_empty()).then_some(Arn { partition, service, region, account, resource })
    }

    /// `text` parsed, when it is an ARN of `service` whose resource is of `resource_type`.
    pub fn of_type(text: &'a str, service: &str, resource_type: &str) -> Option<Arn<'a>> {
        Arn::parse(text).filter(|arn| arn.service == service && arn.resource_type() == resource_type)
    }

    /// The resource's type: what precedes the first `/` or `:` of the resource (`targetgroup`,
    /// `log-group`, `task-definition`); the whole resource when it has neither.
    pub fn resource_type(&self) -> &'a str {
        self.resource.split(['/', ':']).next().unwrap_or(self.resource)
    }

    /// The resource after its type and that separator: `web/73e2d6bc24d8a067` for a target group,
    /// `/ecs/web:*` for a log group, `myapp:3` for a task definition; the whole resource when it
    /// names no type.
    pub fn resource_id(&self) -> &'a str {
        self.resource.split_once(['/', ':']).map_or(self.resource, |(_, id)| id)
    }

    /// The `/`-separated segments of the resource, its type first:
    /// `["loadbalancer", "app", "web", "50dc6c495c0c9188"]`.
    pub fn segments(&self) -> std::str::Split<'a, char> {
        self.resource.split('/')
    }

    /// The last `/`-separated segment of the resource: a role's name (after its path), a task's
    /// id, an EC2 resource's id, `family:revision` of a task definition.
    pub fn last_segment(&self) -> &'a str {
        self.resource.rsplit('/').next().unwrap_or(self.resource)
    }
}

/// An id as shown: an ARN's resource part (`targetgroup/myapp/73e2d6bc24d8a067`), other ids as
/// they are.
pub fn short_id(id: &str) -> &str {
    Arn::parse(id).map_or(id, |arn| arn.resource)
}

/// Whether `text` is an ARN of `service` whose resource starts with `resource_prefix`
/// (`targetgroup/`, `loadbalancer/app/`, `role/`).
pub fn is_of(text: &str, service: &str, resource_prefix: &str) -> bool {
    Arn::parse(text).is_some_and(|arn| arn.service == service && arn.resource.starts_with(resource_prefix))
}

/// The last segment of an ARN's resource ([`Arn::last_segment`]); other text as it is.
pub fn last_segment(text: &str) -> &str {
    Arn::parse(text).map_or(text, |arn| arn.last_segment())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_names_its_parts() {
        let tg = Arn::parse("arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web/73e2").unwrap();
        assert_eq!(
            (tg.partition, tg.service, tg.region, tg.account, tg.resource),
            ("aws", "elasticloadbalancing", "us-west-2", "123456789012", "targetgroup/web/73e2")
        );
        assert_eq!((tg.resource_type(), tg.resource_id(), tg.last_segment()), ("targetgroup", "web/73e2", "73e2"));
        let logs = Arn::parse("arn:aws:logs:us-west-2:1:log-group:/ecs/web:*").unwrap();
        assert_eq!((logs.resource_type(), logs.resource_id()), ("log-group", "/ecs/web:*"));
        let policy = Arn::parse("arn:aws:iam::aws:policy/service-role/Name").unwrap();
        assert_eq!((policy.region, policy.account, policy.resource_id()), ("", "aws", "service-role/Name"));
        assert_eq!(policy.last_segment(), "Name");
        let lb = Arn::parse("arn:aws:elasticloadbalancing:r:1:loadbalancer/app/web/50dc").unwrap();
        assert_eq!(lb.segments().collect::<Vec<_>>(), ["loadbalancer", "app", "web", "50dc"]);
    }

    #[test]
    fn other_text_is_no_arn_and_shows_as_it_is() {
        for text in ["subnet-123", "arn:c", "arn:aws:ecs:r:1:", "aws:ecs:r:1:cluster/x"] {
            assert_eq!(Arn::parse(text), None, "{text}");
            assert_eq!(short_id(text), text);
        }
        assert_eq!(short_id("arn:aws:ecs:r:1:service/c/web"), "service/c/web");
        assert_eq!(last_segment("arn:aws:ecs:r:1:task-definition/web:3"), "web:3");
        assert!(Arn::of_type("arn:aws:ecs:r:1:cluster/shop", "ecs", "cluster").is_some());
        assert!(Arn::of_type("arn:aws:ecs:r:1:cluster/shop", "ecs", "service").is_none());
        assert!(is_of(
            "arn:aws:elasticloadbalancing:r:1:loadbalancer/app/web/1",
            "elasticloadbalancing",
            "loadbalancer/app/"
        ));
        assert!(!is_of(
            "arn:aws:elasticloadbalancing:r:1:loadbalancer/net/web/1",
            "elasticloadbalancing",
            "loadbalancer/app/"
        ));
        assert!(!is_of("not:targetgroup/x", "elasticloadbalancing", "targetgroup/"));
    }
}
