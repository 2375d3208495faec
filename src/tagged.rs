//! The stack's resources as the Resource Groups Tagging API lists them (GetResources by the
//! `deckhand:stack` tag: one request per 100 resources, whatever else the account holds), and the
//! `deckhand:keep` mark that `keep: true` in a script puts on a resource.
//!
//! One read serves three purposes in the first wave of a run: the ARNs of the stack's load
//! balancers and target groups (ELBv2 cannot list by tag), whether the stack has certificates,
//! and which of its resources are marked to be kept when the script stops declaring them.
//!
//! The tagging index is eventually consistent: a resource created moments ago may be missing
//! (every kind also looks up by name before it creates), and one deleted moments ago may still be
//! listed (callers describe by ARN and drop what is gone).

use std::collections::HashSet;

use aws_sdk_resourcegroupstagging::types::TagFilter;

use crate::arn::Arn;
use crate::error::{Error, Result, aws_error, sent};
use crate::runtime::Aws;

/// The tag key that marks everything deckhand creates.
pub const STACK_TAG: &str = "deckhand:stack";

/// The tag `keep: true` puts on a resource (value `true`): a run that no longer declares it keeps it.
pub const KEEP_TAG: &str = "deckhand:keep";

/// The stack's tagged resources: their ARNs, and which carry the keep mark.
#[derive(Debug, Clone, Default)]
pub struct StackTagged {
    arns: Vec<String>,
    marked: HashSet<String>,
}

impl StackTagged {
    /// Reads every resource tagged with the stack (GetResources, paginated).
    pub async fn read(aws: &Aws, stack: &str) -> Result<StackTagged> {
        let mut pages = aws
            .tagging
            .get_resources()
            .tag_filters(TagFilter::builder().key(STACK_TAG).values(stack).build())
            .into_paginator()
            .items()
            .send();
        let mut tagged = StackTagged::default();
        while let Some(mapping) = pages.next().await {
            let mapping = mapping.map_err(|e| aws_error("GetResources", e))?;
            let arn = mapping.resource_arn().ok_or_else(|| Error::missing("GetResources", "ResourceARN"))?;
            if mapping.tags().iter().any(|t| t.key() == KEEP_TAG && t.value() == "true") {
                tagged.marked.insert(key_of_arn(arn));
            }
            tagged.arns.push(arn.to_string());
        }
        Ok(tagged)
    }

    /// A stack whose resources with these keys carry the mark (for tests).
    #[cfg(test)]
    pub fn marked<'a>(keys: impl IntoIterator<Item = &'a str>) -> StackTagged {
        StackTagged { arns: Vec::new(), marked: keys.into_iter().map(str::to_string).collect() }
    }

    /// Adds resources of the stack found another way than the tagging API (whose index lags).
    pub fn add_arns(&mut self, arns: impl IntoIterator<Item = String>) {
        for arn in arns {
            if !self.arns.contains(&arn) {
                self.arns.push(arn);
            }
        }
    }

    /// The ARNs of one resource type, e.g. (`elasticloadbalancing`, `loadbalancer`).
    pub fn arns(&self, service: &str, resource: &str) -> Vec<String> {
        self.arns.iter().filter(|arn| Arn::of_type(arn, service, resource).is_some()).cloned().collect()
    }

    /// True when the resource with this id (an ARN, an EC2 id, a log group's name) carries the mark.
    pub fn is_marked(&self, id: &str) -> bool {
        self.marked.contains(id)
    }

    /// Records that the mark was put on (or taken off) a resource.
    pub fn set_marked(&mut self, target: &Keepable, keep: bool) {
        if keep {
            self.marked.insert(target.key().to_string());
        } else {
            self.marked.remove(target.key());
        }
    }
}

/// A resource that can carry the keep mark, by the API that tags it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keepable {
    /// An EC2 resource (subnet, security group, NAT gateway, route table): its id.
    Ec2(String),
    /// A load balancer or target group: its ARN.
    Elbv2(String),
    /// An ECS cluster or service: its ARN.
    Ecs(String),
    /// An ACM certificate: its ARN.
    Acm(String),
    /// A log group: its name and ARN.
    Logs {
        /// Its name.
        name: String,
        /// Its ARN (without `:*`).
        arn: String,
    },
}

impl Keepable {
    /// How [`StackTagged`] knows it: the ARN, or the EC2 id, or the log group's name.
    pub fn key(&self) -> &str {
        match self {
            Keepable::Ec2(id) => id,
            Keepable::Elbv2(arn) | Keepable::Ecs(arn) | Keepable::Acm(arn) => arn,
            Keepable::Logs { name, .. } => name,
        }
    }
}

/// Puts the keep mark on `target` (or takes it off), with the API of its service.
pub async fn set_keep(aws: &Aws, target: &Keepable, keep: bool) -> Result<()> {
    use aws_sdk_acm::types::Tag as AcmTag;
    use aws_sdk_ec2::types::Tag as Ec2Tag;
    use aws_sdk_ecs::types::Tag as EcsTag;
    use aws_sdk_elasticloadbalancingv2::types::Tag as ElbTag;
    let acm_tag = || AcmTag::builder().key(KEEP_TAG).value("true").build().map_err(|e| Error::Internal(e.to_string()));
    match (target, keep) {
        (Keepable::Ec2(id), true) => {
            let tag = Ec2Tag::builder().key(KEEP_TAG).value("true").build();
            sent("CreateTags", aws.ec2.create_tags().resources(id).tags(tag).send()).await
        }
        (Keepable::Ec2(id), false) => {
            let tag = Ec2Tag::builder().key(KEEP_TAG).build();
            sent("DeleteTags", aws.ec2.delete_tags().resources(id).tags(tag).send()).await
        }
        (Keepable::Elbv2(arn), true) => {
            let tag = ElbTag::builder().key(KEEP_TAG).value("true").build();
            sent("AddTags", aws.elbv2.add_tags().resource_arns(arn).tags(tag).send()).await
        }
        (Keepable::Elbv2(arn), false) => {
            sent("RemoveTags", aws.elbv2.remove_tags().resource_arns(arn).tag_keys(KEEP_TAG).send()).await
        }
        (Keepable::Ecs(arn), true) => {
            let tag = EcsTag::builder().key(KEEP_TAG).value("true").build();
            sent("TagResource", aws.ecs.tag_resource().resource_arn(arn).tags(tag).send()).await
        }
        (Keepable::Ecs(arn), false) => {
            sent("UntagResource", aws.ecs.untag_resource().resource_arn(arn).tag_keys(KEEP_TAG).send()).await
        }
        (Keepable::Acm(arn), true) => {
            let call = aws.acm.add_tags_to_certificate().certificate_arn(arn).tags(acm_tag()?).send();
            sent("AddTagsToCertificate", call).await
        }
        (Keepable::Acm(arn), false) => {
            let call = aws.acm.remove_tags_from_certificate().certificate_arn(arn).tags(acm_tag()?).send();
            sent("RemoveTagsFromCertificate", call).await
        }
        (Keepable::Logs { arn, .. }, true) => {
            sent("TagResource", aws.logs.tag_resource().resource_arn(arn).tags(KEEP_TAG, "true").send()).await
        }
        (Keepable::Logs { arn, .. }, false) => {
            sent("UntagResource", aws.logs.untag_resource().resource_arn(arn).tag_keys(KEEP_TAG).send()).await
        }
    }
}

/// How a marked resource is known: EC2 resources by id, log groups by name, the rest by ARN.
fn key_of_arn(text: &str) -> String {
    match Arn::parse(text) {
        Some(arn) if arn.service == "ec2" => arn.last_segment().to_string(),
        Some(arn) if arn.service == "logs" && arn.resource_type() == "log-group" => {
            arn.resource_id().trim_end_matches(":*").to_string()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_arns_are_listed_by_type_and_marked_resources_by_their_key() {
        let lb = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/app/web/abc";
        let tg = "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/web/abc";
        let group = "arn:aws:logs:us-west-2:1:log-group:/ecs/web:*";
        assert_eq!(key_of_arn(group), "/ecs/web");
        assert_eq!(key_of_arn("arn:aws:ec2:us-west-2:1:subnet/subnet-1"), "subnet-1");
        let cert = "arn:aws:acm:us-west-2:1:certificate/abc";
        assert_eq!(key_of_arn(cert), cert);
        let tagged = StackTagged { arns: vec![lb.into(), tg.into(), cert.into()], marked: HashSet::new() };
        assert_eq!(tagged.arns("elasticloadbalancing", "loadbalancer"), [lb]);
        assert_eq!(tagged.arns("acm", "certificate"), [cert]);
    }
}
