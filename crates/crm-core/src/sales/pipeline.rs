//! Pipelines and their stages.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::PipelineId;
use crate::value::{DisplayName, StageKey};

/// Where a stage leaves a deal: still open, won or lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still being worked.
    Open,
    /// Won: probability 100.
    Won,
    /// Lost: probability 0, with a reason.
    Lost,
}

impl Outcome {
    /// `open`, `won` or `lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Won => "won",
            Outcome::Lost => "lost",
        }
    }

    /// Whether the deal is closed (won or lost).
    pub fn is_closed(self) -> bool {
        self != Outcome::Open
    }
}

/// How a deal counts in a forecast, the categories sales teams commit to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ForecastCategory {
    /// Early: counted in the pipeline only.
    Pipeline,
    /// Could close this period if things go well.
    BestCase,
    /// The owner commits to closing it this period.
    Commit,
    /// Won.
    Closed,
    /// Left out of the forecast (lost, or parked).
    Omitted,
}

impl ForecastCategory {
    /// Every category, in the order above.
    pub const ALL: [ForecastCategory; 5] = [
        ForecastCategory::Pipeline,
        ForecastCategory::BestCase,
        ForecastCategory::Commit,
        ForecastCategory::Closed,
        ForecastCategory::Omitted,
    ];

    /// `pipeline`, `best_case`, `commit`, `closed` or `omitted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ForecastCategory::Pipeline => "pipeline",
            ForecastCategory::BestCase => "best_case",
            ForecastCategory::Commit => "commit",
            ForecastCategory::Closed => "closed",
            ForecastCategory::Omitted => "omitted",
        }
    }
}

/// One stage of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// The key deals and history name it by; never changes.
    pub key: StageKey,
    /// The name people see.
    pub name: DisplayName,
    /// The probability (percent, 0 to 100) a deal gets on entering the stage.
    pub probability: u8,
    /// How a deal in this stage counts in the forecast.
    pub category: ForecastCategory,
    /// Whether a deal in this stage is open, won or lost.
    pub outcome: Outcome,
}

impl Stage {
    /// An open stage with a default probability and forecast category. Errors: validation
    /// on `key`, `name`, `probability` (over 100) or `category` (`closed` is for won
    /// stages).
    pub fn open(
        key: &str,
        name: &str,
        probability: u8,
        category: ForecastCategory,
    ) -> Result<Self> {
        let stage = Stage {
            key: StageKey::parse_field(key, "key")?,
            name: DisplayName::parse(name)?,
            probability,
            category,
            outcome: Outcome::Open,
        };
        stage.validate()?;
        Ok(stage)
    }

    /// A won stage: probability 100, category `closed`.
    pub fn won(key: &str, name: &str) -> Result<Self> {
        Ok(Stage {
            key: StageKey::parse_field(key, "key")?,
            name: DisplayName::parse(name)?,
            probability: 100,
            category: ForecastCategory::Closed,
            outcome: Outcome::Won,
        })
    }

    /// A lost stage: probability 0, category `omitted`.
    pub fn lost(key: &str, name: &str) -> Result<Self> {
        Ok(Stage {
            key: StageKey::parse_field(key, "key")?,
            name: DisplayName::parse(name)?,
            probability: 0,
            category: ForecastCategory::Omitted,
            outcome: Outcome::Lost,
        })
    }

    /// Checks the probability and category agree with the outcome.
    pub fn validate(&self) -> Result<()> {
        match self.outcome {
            Outcome::Open if self.probability > 100 => {
                Err(Error::validation("probability", "must be 0 to 100"))
            }
            Outcome::Open if self.category == ForecastCategory::Closed => Err(Error::validation(
                "category",
                "an open stage cannot be in the closed category",
            )),
            Outcome::Won
                if self.probability != 100 || self.category != ForecastCategory::Closed =>
            {
                Err(Error::validation(
                    "probability",
                    "a won stage has probability 100 and category closed",
                ))
            }
            Outcome::Lost
                if self.probability != 0 || self.category != ForecastCategory::Omitted =>
            {
                Err(Error::validation(
                    "probability",
                    "a lost stage has probability 0 and category omitted",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A pipeline: ordered stages a deal moves through, at least one open, one won and one lost.
///
/// ```
/// use crm_core::sales::{ForecastCategory, Pipeline, Stage};
/// let pipeline = Pipeline::new("New business", vec![
///     Stage::open("qualify", "Qualify", 10, ForecastCategory::Pipeline)?,
///     Stage::open("proposal", "Proposal", 40, ForecastCategory::BestCase)?,
///     Stage::open("negotiation", "Negotiation", 70, ForecastCategory::Commit)?,
///     Stage::won("won", "Won")?,
///     Stage::lost("lost", "Lost")?,
/// ])?;
/// assert_eq!(pipeline.first_open()?.key.as_str(), "qualify");
/// assert_eq!(pipeline.position("negotiation"), Some(2));
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Its id.
    pub id: PipelineId,
    /// Its name.
    pub name: DisplayName,
    /// The stages, in order (deals usually move forward through the open ones).
    pub stages: Vec<Stage>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// The most stages a pipeline has.
pub const MAX_STAGES: usize = 30;

impl Pipeline {
    /// A new pipeline (version 1). Errors: see [`Pipeline::validate`].
    pub fn new(name: &str, stages: Vec<Stage>) -> Result<Self> {
        let pipeline = Pipeline {
            id: PipelineId::new(),
            name: DisplayName::parse(name)?,
            stages,
            version: 1,
        };
        pipeline.validate()?;
        Ok(pipeline)
    }

    /// Checks the stages: 3 to [`MAX_STAGES`], keys unique, each stage valid, at least one
    /// open, one won and one lost. Errors name `stages` or `stages[i].<field>`.
    pub fn validate(&self) -> Result<()> {
        if !(3..=MAX_STAGES).contains(&self.stages.len()) {
            return Err(Error::validation(
                "stages",
                format!(
                    "a pipeline has 3 to {MAX_STAGES} stages, got {}",
                    self.stages.len()
                ),
            ));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            stage
                .validate()
                .map_err(|e| e.in_field(&format!("stages[{i}]")))?;
            if self.stages[..i].iter().any(|s| s.key == stage.key) {
                return Err(Error::validation(
                    format!("stages[{i}].key"),
                    format!("the key {} is used twice", stage.key),
                ));
            }
        }
        for outcome in [Outcome::Open, Outcome::Won, Outcome::Lost] {
            if !self.stages.iter().any(|s| s.outcome == outcome) {
                return Err(Error::validation(
                    "stages",
                    format!("a pipeline needs at least one {} stage", outcome.as_str()),
                ));
            }
        }
        Ok(())
    }

    /// Checks that `self` may replace `stored`: valid, and every stage key of `stored` is
    /// still there with the same outcome (deals and their history name stages by key).
    pub fn check_successor(&self, stored: &Pipeline) -> Result<()> {
        self.validate()?;
        for old in &stored.stages {
            match self.stage(old.key.as_str()) {
                None => {
                    return Err(Error::validation(
                        "stages",
                        format!(
                            "the stage {} cannot be removed (deals may be in it)",
                            old.key
                        ),
                    ))
                }
                Some(new) if new.outcome != old.outcome => {
                    return Err(Error::validation(
                        "stages",
                        format!("the stage {} cannot change its outcome", old.key),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The stage with `key`.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key.as_str() == key)
    }

    /// The stage with `key`. Errors: validation on `field`.
    pub fn require_stage(&self, key: &str, field: &str) -> Result<&Stage> {
        self.stage(key).ok_or_else(|| {
            Error::validation(
                field,
                format!("the pipeline {} has no stage {key:?}", self.name),
            )
        })
    }

    /// The position of the stage with `key`.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.key.as_str() == key)
    }

    /// The first open stage, where new deals start. Errors: validation on `stages` when the
    /// pipeline has none (a pipeline that was never validated).
    pub fn first_open(&self) -> Result<&Stage> {
        self.first(Outcome::Open)
    }

    /// The first stage with `outcome` (a validated pipeline has one of each). Errors:
    /// validation on `stages` when there is none.
    pub fn first(&self, outcome: Outcome) -> Result<&Stage> {
        self.stages
            .iter()
            .find(|s| s.outcome == outcome)
            .ok_or_else(|| {
                Error::validation(
                    "stages",
                    format!("the pipeline has no {} stage", outcome.as_str()),
                )
            })
    }

    /// The open stages, in order: the steps of the funnel.
    pub fn open_stages(&self) -> impl Iterator<Item = &Stage> {
        self.stages.iter().filter(|s| s.outcome == Outcome::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Vec<Stage> {
        vec![
            Stage::open("qualify", "Qualify", 10, ForecastCategory::Pipeline).unwrap(),
            Stage::won("won", "Won").unwrap(),
            Stage::lost("lost", "Lost").unwrap(),
        ]
    }

    #[test]
    fn pipelines_need_every_outcome_and_unique_keys() {
        assert!(Pipeline::new("P", stages()).is_ok());
        let mut s = stages();
        s.remove(2);
        s.push(Stage::open("x", "X", 5, ForecastCategory::Pipeline).unwrap());
        assert_eq!(Pipeline::new("P", s).unwrap_err().field(), Some("stages"));
        let mut s = stages();
        s.push(Stage::open("won", "Again", 5, ForecastCategory::Pipeline).unwrap());
        assert_eq!(
            Pipeline::new("P", s).unwrap_err().field(),
            Some("stages[3].key")
        );
        assert_eq!(
            Pipeline::new("P", stages()[..2].to_vec())
                .unwrap_err()
                .field(),
            Some("stages")
        );
        let mut s = stages();
        s[1].probability = 90;
        assert_eq!(
            Pipeline::new("P", s).unwrap_err().field(),
            Some("stages[1].probability")
        );
        assert_eq!(
            Stage::open("a", "A", 101, ForecastCategory::Pipeline)
                .unwrap_err()
                .field(),
            Some("probability")
        );
        assert_eq!(
            Stage::open("a", "A", 50, ForecastCategory::Closed)
                .unwrap_err()
                .field(),
            Some("category")
        );
        assert_eq!(
            Stage::open("A b", "A", 50, ForecastCategory::Commit)
                .unwrap_err()
                .field(),
            Some("key")
        );
    }

    #[test]
    fn a_pipeline_without_stages_answers_errors() {
        let empty = Pipeline {
            id: PipelineId::new(),
            name: DisplayName::parse("Empty").unwrap(),
            stages: vec![],
            version: 1,
        };
        assert_eq!(empty.first_open().unwrap_err().field(), Some("stages"));
        assert_eq!(
            empty.first(Outcome::Won).unwrap_err().field(),
            Some("stages")
        );
    }

    #[test]
    fn a_successor_keeps_every_stage_key_and_outcome() {
        let stored = Pipeline::new("P", stages()).unwrap();
        let mut next = stored.clone();
        next.stages.insert(
            1,
            Stage::open("demo", "Demo", 30, ForecastCategory::BestCase).unwrap(),
        );
        next.stages[0].name = DisplayName::parse("Qualification").unwrap();
        assert!(next.check_successor(&stored).is_ok());
        let mut gone = stored.clone();
        gone.stages.remove(0);
        gone.stages
            .push(Stage::open("other", "Other", 5, ForecastCategory::Pipeline).unwrap());
        assert_eq!(
            gone.check_successor(&stored).unwrap_err().field(),
            Some("stages")
        );
        let mut turned = stored.clone();
        turned.stages[2] = Stage::open("lost", "Parked", 0, ForecastCategory::Omitted).unwrap();
        turned.stages.push(Stage::lost("dead", "Dead").unwrap());
        assert_eq!(
            turned.check_successor(&stored).unwrap_err().field(),
            Some("stages")
        );
    }
}
